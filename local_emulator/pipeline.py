"""`LocalPipeline`: the whole pipeline on this machine (also behind ``python -m local_emulator up``).

    with LocalPipeline.start(profile="dev") as pipeline:
        pipeline.base_url          # "http://127.0.0.1:<port>/<stage>" (POST {base_url}/v1/events)
        pipeline.api_keys          # {"producer": "...", "reader": "..."} from the stack's *ApiKeyId outputs
        pipeline.outputs           # the stack's outputs (table names, queue URLs, ...)
        pipeline.client("dynamodb")  # boto3 client against the local AWS (moto)
        pipeline.wait_until_idle() # every shard drained, no retry pending, no function running
        pipeline.alarm_states()    # locally evaluated alarms

Start-up: synthesize the CDK app (cached per source hash in ``.local/cdk.out``), start moto's server,
deploy the same template, then start the runtime (functions, REST API, pollers, alarms).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

# The shared names live with the functions; put them on the path as the CDK app and tests do.
from streamrec_core import constants

from local_emulator import aws
from local_emulator.assembly import read_assembly, synth
from local_emulator.deploy import DeployedStack, deploy
from local_emulator.moto_server import MotoServer
from local_emulator.runtime import Runtime, RuntimeOptions

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parent.parent

# Stack outputs "<Role>ApiKeyId" (constants.OUTPUT_PRODUCER_API_KEY_ID, ...) name each API key's role.
API_KEY_OUTPUT_SUFFIX = "ApiKeyId"
# `write_endpoint_file=True` writes `endpoint_document()` here, in the work directory.
ENDPOINT_FILE = "endpoint.json"


class LocalPipeline:
    """A running local pipeline: moto server, deployed stack(s) and the local runtime."""

    def __init__(
        self,
        moto: MotoServer,
        stacks: list[DeployedStack],
        runtime: Runtime,
        workdir: Path,
        timings: dict[str, float],
    ) -> None:
        self._moto = moto
        self.stacks = stacks
        self.runtime = runtime
        self.workdir = workdir
        self.timings = timings
        self.region = aws.REGION
        self.moto_endpoint = moto.endpoint
        self.outputs: dict[str, str] = {}
        for stack in stacks:
            self.outputs.update(stack.outputs)
        self.stack_name = stacks[0].stack_name if stacks else ""
        self.api_keys = self._api_keys()
        self.base_url = self._base_url()

    @classmethod
    def start(
        cls,
        profile: str = "dev",
        *,
        app_dir: Path = REPO_ROOT,
        workdir: Path | None = None,
        cache_root: Path | None = None,
        context: dict[str, Any] | None = None,
        api_port: int = 0,
        write_endpoint_file: bool = False,
        warm: bool = True,
        poll_interval_s: float = 0.1,
    ) -> LocalPipeline:
        """Synthesize (cached), start moto, deploy, start the runtime; returns the running pipeline.

        `context` adds CDK context on top of cdk.json's (``nag`` is off by default: cdk-nag only checks,
        it does not change the template, and skipping it saves seconds of synthesis).
        """
        app_dir = app_dir.resolve()
        workdir = (workdir or app_dir / ".local").resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        timings: dict[str, float] = {}
        started = time.monotonic()
        # moto first: it warms its backends up in its own process while the app synthesizes.
        moto = MotoServer(log_path=workdir / "logs" / "moto.log")
        moto.start()
        timings["moto_s"] = time.monotonic() - started
        runtime = None
        try:
            mark = time.monotonic()
            assembly_dir = synth(
                app_dir,
                profile,
                cache_root=cache_root or app_dir / ".local" / "cdk.out",
                context={"nag": False, **(context or {})},
            )
            timings["synth_s"] = time.monotonic() - mark

            mark = time.monotonic()
            stacks = deploy(read_assembly(assembly_dir), moto.endpoint)
            timings["deploy_s"] = time.monotonic() - mark

            mark = time.monotonic()
            options = RuntimeOptions(
                workdir=workdir, api_port=api_port, poll_interval_s=poll_interval_s, warm=warm
            )
            runtime = Runtime(moto.endpoint, stacks, options)
            runtime.start()
            timings["runtime_s"] = time.monotonic() - mark
        except BaseException:
            if runtime is not None:
                runtime.stop()
            moto.stop()
            raise
        timings["total_s"] = time.monotonic() - started
        pipeline = cls(moto, stacks, runtime, workdir, timings)
        if write_endpoint_file:
            pipeline.write_endpoint_file(pipeline.endpoint_file)
        log.info("local pipeline up in %.1f s (%s)", timings["total_s"], timings)
        return pipeline

    # --- what clients need --------------------------------------------------------------------------
    def _api_keys(self) -> dict[str, str]:
        values = {key["id"]: key["value"] for stack in self.stacks for key in stack.api_keys.values()}
        keys: dict[str, str] = {}
        for output, key_id in self.outputs.items():
            if output.endswith(API_KEY_OUTPUT_SUFFIX) and key_id in values:
                keys[output[: -len(API_KEY_OUTPUT_SUFFIX)].lower()] = values[key_id]
        if not keys:  # no role outputs: name them by the keys' names
            keys = {key["name"]: key["value"] for stack in self.stacks for key in stack.api_keys.values()}
        return keys

    def _base_url(self) -> str:
        gateways = self.runtime.gateways
        if not gateways:
            return ""
        api_id = self.outputs.get(constants.OUTPUT_REST_API_ID)
        gateway = gateways.get(api_id) if api_id else None
        gateway = gateway or next(iter(gateways.values()))
        stage = self.outputs.get(constants.OUTPUT_API_STAGE) or next(iter(gateway.model.stages), "")
        return gateway.base_url(stage)

    @property
    def endpoint_file(self) -> Path:
        """Where `start(write_endpoint_file=True)` writes the endpoint document."""
        return self.workdir / ENDPOINT_FILE

    def endpoint_document(self) -> dict[str, Any]:
        """What ``.local/endpoint.json`` holds: how curl, tools and tests reach this pipeline."""
        return {
            "target": "embedded",
            "base_url": self.base_url,
            "api_keys": self.api_keys,
            "moto_endpoint": self.moto_endpoint,
            "region": self.region,
            "stack_name": self.stack_name,
            "outputs": self.outputs,
            "admin_url": self.base_url.rsplit("/", 1)[0] + "/_local/" if self.base_url else "",
            "alarms_file": str(self.workdir / "alarms.json"),
            "logs_dir": str(self.workdir / "logs"),
        }

    def write_endpoint_file(self, path: Path) -> None:
        """Write `endpoint_document()` atomically to `path`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as scratch:
            json.dump(self.endpoint_document(), scratch, indent=2)
        Path(scratch.name).replace(path)

    def client(self, service: str) -> Any:
        """A boto3 client for `service` against the local AWS (moto)."""
        return aws.client(service, self.moto_endpoint, self.region)

    def function_name(self, logical_id_prefix: str) -> str:
        """The deployed name of the function whose logical id starts with `logical_id_prefix`."""
        for stack in self.stacks:
            for name, code in stack.functions.items():
                if code.logical_id.startswith(logical_id_prefix):
                    return name
        raise KeyError(f"no function with logical id starting {logical_id_prefix!r}")

    def invoke(self, function_name: str, event: Any) -> tuple[Any, str | None]:
        """Invoke a deployed function directly (like Lambda's Invoke): (payload, function_error)."""
        return self.runtime.invoke(function_name, event)

    def wait_until_idle(self, timeout_s: float = 60.0) -> None:
        """Block until all shards are drained, no retry is pending and no function is running."""
        self.runtime.wait_until_idle(timeout_s)

    def evaluate_alarms(self) -> dict[str, dict[str, Any]]:
        """Sample metrics and evaluate every alarm now (rather than at the next monitor tick)."""
        self.runtime.sample()
        return self.alarm_states()

    def alarm_states(self) -> dict[str, dict[str, Any]]:
        """Every deployed alarm's locally evaluated state."""
        return self.runtime.alarms.snapshot() if self.runtime.alarms else {}

    def stop(self) -> None:
        """Stop the runtime and moto's server."""
        try:
            self.runtime.stop()
        finally:
            self._moto.stop()

    def __enter__(self) -> LocalPipeline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
