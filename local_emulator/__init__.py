"""The embedded local emulator: moto's server as local AWS, plus a runtime for what moto cannot do.

- `local_emulator.esm.EsmPoller`: Kinesis event source mapping poller with AWS's semantics (usable alone).
- `local_emulator.pipeline.LocalPipeline`: start moto, deploy the synthesized CDK app, run the functions,
  the REST API and the pollers; `python -m local_emulator up` does the same from the command line.
"""
