"""SageMaker where moto falls short: training jobs, endpoints and InvokeEndpoint, run locally.

One module per resource: `training.py` (CreateTrainingJob/StopTrainingJob; each job a
`training_run.py` subprocess), `endpoints.py` (CreateEndpoint/UpdateEndpoint/DeleteEndpoint; each
deployment an `inference_server.py` subprocess on `model_data.py`'s unpacked model) and
`runtime.py` (InvokeEndpoint). `emulation.py` routes requests to them in front of moto, which
keeps every record, so Describe*/List* stay moto's.
"""

from hyenaflow.local.sagemaker.emulation import SageMakerEmulation

__all__ = ["SageMakerEmulation"]
