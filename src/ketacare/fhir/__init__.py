"""FHIR mapping and export.

Plain-dict FHIR R4 (4.0.1) JSON for ketacare's clinical objects; camelCase FHIR
names stay inside this package. Tests validate the output with the
``fhir.resources`` R4B models, used only for resources whose R4 and R4B JSON
agree (Questionnaire, QuestionnaireResponse, Observation).
"""
