"""`pydarknet ARGS...` as one torchrun rank, for tests/test_distributed.py.

Usage: torchrun ... tests/ddp_worker.py OUT ARGS...  Writes this rank's pid
to OUT/rankN.pid and one line per training step (train_network call) to OUT/rankN.txt:
`seen-before width x height images`.  With DDP_WORKER_INTERRUPT_AFTER=N,
rank 0 sends itself a SIGINT (Ctrl-C) during its N-th training step.
"""

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pydarknet.train.trainer as trainer  # noqa: E402
from pydarknet.cli import main  # noqa: E402

out = Path(sys.argv[1])
rank = os.environ["RANK"]
(out / f"rank{rank}.pid").write_text(str(os.getpid()))
interrupt_after = int(os.environ.get("DDP_WORKER_INTERRUPT_AFTER", "0"))
real_train_network = trainer.train_network
calls = 0


def recorded_train_network(net, state, x, truth, log=None):  # type: ignore[no-untyped-def]
    global calls
    with open(out / f"rank{rank}.txt", "a") as f:
        f.write(f"{net.seen} {x.shape[3]}x{x.shape[2]} {x.shape[0]}\n")
    loss = real_train_network(net, state, x, truth, log)
    calls += 1
    if rank == "0" and calls == interrupt_after:
        os.kill(os.getpid(), signal.SIGINT)
    return loss


trainer.train_network = recorded_train_network
sys.argv = ["pydarknet", *sys.argv[2:]]
sys.exit(main())
