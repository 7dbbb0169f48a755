"""The code a Gantry design runs in AWS, and how it is packaged.

- ``lambda_src/handler.py``: the function that calls the private API with the credential;
- ``userdata/``: the API instance's first-boot script and its HTTPS health API;
- ``artifacts.py``: the function's deployment package and the instance's user data, built from
  those files.

Neither the deployer nor the designer owns it: the deployer uploads these artifacts with boto3,
and the CloudFormation export (``designer/export``) writes the same artifacts into the template,
so a stack built from the template runs exactly the code a Gantry deployment runs. Both import
from here; this package imports neither.
"""
