"""Compiles an export's TPU programs for a TPU that is not there: libtpu's compiler, no chip.

`jax.experimental.topologies` describes a TPU slice from its name (e.g.
"v4:2x2x1") with compile-only devices, so XLA's TPU compiler runs on this CPU
host and reports each program's code and memory. Needs the `libtpu` package
(the version jax pins in its `tpu` extra; tools/setup.sh installs it apart in
.tpu-check/). JAX only: the modules come in as bytes (export/stablehlo.py).
"""

from __future__ import annotations

import dataclasses
import time

import jax
from jax.experimental import topologies

from soundstorm.export.stablehlo import argument_specs

# HBM of a TPU v4 chip (Google Cloud, "TPU v4" system architecture: 32 GiB of HBM2),
# shared by its two TensorCores. This topology description lists 8 devices for the 4 chips
# of v4:2x2x1 (core_on_chip 0 and 1) and a program is compiled for one of them, so it is
# measured against half a chip: conservative (in megacore mode a program has the whole 32).
TPU_V4_HBM_BYTES_PER_CORE = 32 * 2**30 // 2


@dataclasses.dataclass(frozen=True)
class ProgramReport:
    batch: int
    compile_seconds: float
    code_bytes: int           # generated code
    argument_bytes: int       # parameters and inputs
    output_bytes: int
    temp_bytes: int           # XLA's scratch memory at its peak

    @property
    def memory_bytes(self) -> int:
        """What one run needs on the chip: arguments, outputs, scratch and code."""
        return self.argument_bytes + self.output_bytes + self.temp_bytes + self.code_bytes


def tpu_devices(topology: str = "v4:2x2x1"):
    """Compile-only devices of a TPU slice (raises RuntimeError without libtpu)."""
    return topologies.get_topology_desc(topology_name=topology, platform="tpu").devices


def compile_program(exported, batch: int, device) -> ProgramReport:
    """Lowers an Exported's TPU branch at one batch size and compiles it for `device`.

    Raises what JAX raises for a module the TPU compiler refuses (JaxRuntimeError,
    ValueError); tools/tpu_compile_check.py reports it per program.
    """
    sharding = jax.sharding.SingleDeviceSharding(device)
    started = time.perf_counter()
    compiled = (jax.jit(exported.call).trace(*argument_specs(exported, batch, sharding))
                .lower(lowering_platforms=("tpu",)).compile())
    seconds = time.perf_counter() - started
    memory = compiled.memory_analysis()
    return ProgramReport(batch, seconds, memory.generated_code_size_in_bytes,
                         memory.argument_size_in_bytes, memory.output_size_in_bytes,
                         memory.temp_size_in_bytes)
