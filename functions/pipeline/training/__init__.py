"""Training: at most one SageMaker training job over the read sets (the slot), its request and
metrics, the quality gate and blue/green deployment of its model, and the reconciler that hands
lost job events to the same code."""
