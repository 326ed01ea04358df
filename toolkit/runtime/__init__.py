"""Split inference across processes: wire framing, edge and cloud workers, client."""

from toolkit.runtime.framing import Frame, read_frame, write_json, write_tensor
from toolkit.runtime.session import EdgeClient, RunResult, WorkerProcess, worker_command

__all__ = [
    "EdgeClient",
    "Frame",
    "RunResult",
    "WorkerProcess",
    "read_frame",
    "worker_command",
    "write_json",
    "write_tensor",
]
