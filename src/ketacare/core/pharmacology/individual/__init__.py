"""Individualisation: this patient's PK from measured levels, and their response from pain scores.

Maximum a posteriori (MAP) Bayesian estimation with the model's published between-patient
variability as the prior and its published residual error as the likelihood:

    -log p(eta | y) = sum_j (log y_j - log f_j(eta))^2 / (2 sigma^2)      measured samples
                    - sum_j log Phi((log LLOQ_j - log f_j(eta)) / sigma)  below the LLOQ (M3)
                    + sum_k eta_k^2 / (2 omega_k^2)                       prior
                    + constant

``f`` is the exact prediction of the engine (no time stepping), ``eta`` the log-scale (logit
for fractions) random effects, ``sigma`` the SD of the log-transformed residual (Perez-Ruixo
2021 Table 3). The mode is found with :func:`scipy.optimize.minimize` (L-BFGS-B, gradient by
central differences computed as one vectorised batch through the engine); its uncertainty is
the Laplace approximation (inverse of the numerical Hessian at the mode). Random effects the
data cannot inform (the nasal absorption rate of a patient who only had infusions) keep their
prior. Posterior draws come from the Laplace normal, optionally corrected by importance
resampling, and give the credible bands.

A model without a published residual error cannot be individualised unless the caller gives
one explicitly (it is then labelled user-supplied); a model without published variability
has no prior and is refused.

The package is split by concept:

- :mod:`.inputs`: measured levels (:class:`~.inputs.Sample`) and the residual error.
- :mod:`.problem`: the negative log posterior of one patient's data, and its numerics.
- :mod:`.fit`: :func:`~.fit.fit_individual`, the MAP fit with its uncertainty and draws.
- :mod:`.predict`: this patient's curves and credible bands under a regimen.
- :mod:`.response`: the exploratory pain-score (C50) fit and its predictions.

Examples
--------
>>> from ketacare.core.pharmacology import Patient, load_model, parse_regimen
>>> from ketacare.core.pharmacology.individual.fit import fit_individual
>>> from ketacare.core.pharmacology.individual.inputs import Sample
>>> model = load_model(model_id="perez-ruixo-2021")
>>> regimen = parse_regimen({"doses": [{"route": "iv_infusion", "start_h": 0,
...     "duration_h": 2, "amount_mg": 40}]}, weight_kg=70)
>>> fit = fit_individual(model=model, patient=Patient(weight_kg=70, age_years=45),
...                      regimen=regimen, samples=[Sample(time_h=1.9, value_ng_per_ml=60.0),
...                                                Sample(time_h=6.0, value_ng_per_ml=12.0)])
>>> fit.converged, fit.residual_error.user_supplied
(True, False)
>>> round(fit.parameter("Vc").typical, 1)
192.0
"""
