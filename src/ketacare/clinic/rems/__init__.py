"""The SPRAVATO REMS: setting certifications, patient enrolments and the dose gate."""
