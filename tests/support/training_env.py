"""The variables template.yaml gives a training function (start_training; deploy_model and
reconcile extend them), with placeholder values: what a unit test loads TrainingSettings from."""

TRAINING_FUNCTION_ENV = {
    "STATE_TABLE": "state",
    "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts",
    "DATA_BUCKET": "data-bucket",
    "SEQUENCE_STORE_ID": "1234567890",
    "SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/sm",
    "TRAINING_IMAGE_URI": "image:1",
    "TRAINING_SOURCE_URI": "s3://data-bucket/code/training/sourcedir.tar.gz",
}
