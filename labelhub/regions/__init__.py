"""Regions: the shapes an annotation or a prediction holds, checked against their image and the project's
label schema (validation.py). A floor of its own under predictions and labeling, which both stand on it
(.importlinter): an AI region and a human one pass the same checks."""
