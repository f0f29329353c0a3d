"""Treatment consent: templates, e-signature, countersignature, withdrawal."""
