"""HealthOmics base URL and paths (moto's `urls.py` convention: BaseBackend reads them from here).

Every request goes to one dispatcher: moto picks the operation from botocore's model (method +
URI), so no path needs listing.
"""

from hyenaflow.local.omics.responses import OmicsResponse

url_bases = [r"https?://omics\.(.+)\.amazonaws\.com"]

url_paths = {"{0}/.*": OmicsResponse.dispatch}
