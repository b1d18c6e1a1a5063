"""The recipe's `executor` section: where the tasks run (datatrove's Local, Slurm or Ray executor) and how."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from corpusforge.config import StrictModel


class LocalExecutor(StrictModel):
    """Tasks run as processes on this machine."""

    type: Literal["local"] = Field("local", description="The default; may be omitted.")
    tasks: int = Field(1, ge=1, description="Number of tasks = number of shards. Files are split across tasks.")
    workers: int = Field(1, ge=1, description="Tasks run at the same time (processes).")


class SlurmExecutor(StrictModel):
    """Each stage is a Slurm job array (one array task per corpusforge task), chained with `afterok` dependencies;
    a last job finalizes. `corpusforge run` submits and returns; `corpusforge status OUT` follows the build."""

    type: Literal["slurm"] = Field(..., description="Run on Slurm (submit from a login node).")
    tasks: int = Field(1, ge=1, description="Number of tasks = number of shards. Files are split across tasks.")
    workers: int | None = Field(
        None, ge=1, description="Array tasks running at the same time (`--array=0-N%workers`); default: no limit."
    )
    partition: str = Field(..., description="Slurm partition (`--partition`).")
    time: str = Field("12:00:00", description="Time limit per array task (`--time`), e.g. `02:00:00`.")
    cpus_per_task: int = Field(1, ge=1, description="CPUs per task (`--cpus-per-task`).")
    mem_per_cpu_gb: int = Field(2, ge=1, description="Memory per CPU in GB (`--mem-per-cpu`).")
    qos: str | None = Field(None, description="Quality of service (`--qos`); default: the cluster's.")
    job_name: str | None = Field(
        None, description="Job name prefix; default `cf-<recipe name>`. Stages append theirs."
    )
    venv: str | None = Field(
        None,
        description="Python virtual environment activated in each job (`source VENV/bin/activate`); "
        "default: the environment running `corpusforge run`, when it is a venv.",
    )
    env_command: str | None = Field(
        None, description="Shell command(s) that set up the environment in each job instead (e.g. `module load …`)."
    )
    sbatch_args: dict[str, str | int] = Field(
        default_factory=dict,
        description="Extra `#SBATCH --key=value` directives, e.g. `{account: proj42, constraint: cpu}`.",
    )
    requeue: bool = Field(True, description="Let Slurm requeue preempted or failed jobs (`--requeue`).")
    max_array_size: int = Field(
        1001, ge=1, description="The cluster's MaxArraySize; larger stages use several arrays."
    )
    logs: str | None = Field(
        None, description="Folder for Slurm's stdout/stderr files; default `OUT/.corpusforge/slurm`."
    )

    @model_validator(mode="after")
    def _one_environment(self):
        if self.venv and self.env_command:
            raise ValueError("set `venv` or `env_command`, not both")
        return self


class RayExecutor(StrictModel):
    """Tasks run on a Ray cluster (datatrove's RayPipelineExecutor); stages run one after the other."""

    type: Literal["ray"] = Field(..., description="Run on Ray (extra `[ray]`).")
    tasks: int = Field(1, ge=1, description="Number of tasks = number of shards. Files are split across tasks.")
    workers: int | None = Field(None, ge=1, description="Tasks running at the same time; default: all of them.")
    address: str | None = Field(
        None,
        description="Cluster to connect to (`auto`, `ray://host:10001`, `host:6379`); default: `RAY_ADDRESS`, "
        "else a local cluster started for the run. Ignored when the process already called `ray.init()`.",
    )
    cpus_per_task: int = Field(1, ge=1, description="CPUs reserved per task.")
    mem_per_task_gb: float = Field(2, gt=0, description="Memory reserved per task, in GB.")
    time_limit_s: int | None = Field(
        None, ge=1, description="Stop a task running longer than this (seconds); a rerun resumes it."
    )


EXECUTORS = {"local": LocalExecutor, "slurm": SlurmExecutor, "ray": RayExecutor}


def _executor_kind(value: Any) -> str:
    # tags in <> are left out of error paths: `executor.partition`, not `executor.slurm.partition`
    return f"<{value.get('type', 'local') if isinstance(value, dict) else value.type}>"


# `local` is the default when `type` is omitted.
Executor = Annotated[
    Annotated[LocalExecutor, Tag("<local>")]
    | Annotated[SlurmExecutor, Tag("<slurm>")]
    | Annotated[RayExecutor, Tag("<ray>")],
    Discriminator(_executor_kind),
]
