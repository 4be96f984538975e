"""Proof that it trains: two torchrun processes (gloo) train a tiny model (token + position
embedding, one linear head) for two epochs over a Sluice output with num_workers=2. Ranks see
disjoint, equally long data; the loss goes down; a run interrupted mid-epoch and resumed from
its state gives the same per-step losses as the uninterrupted one."""
import json
import subprocess

import pytest

from conftest import GPT2, ROOT, run_sluice

pytest.importorskip("torch", reason="torch is not installed in this venv (scripts/setup.sh installs it)")
pytest.importorskip("torchdata.stateful_dataloader", reason="torchdata is not installed")

TRAIN = r'''
import json, os, sys
import torch, torch.distributed as dist, torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torchdata.stateful_dataloader import StatefulDataLoader
from sluice_reader import SluiceDataset

root, mode, work = sys.argv[1], sys.argv[2], sys.argv[3]
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

class Tiny(nn.Module):
    def __init__(self, vocab=50257, dim=16, context=16):
        super().__init__()
        self.tok, self.pos, self.head = nn.Embedding(vocab, dim), nn.Embedding(context, dim), nn.Linear(dim, vocab)
    def forward(self, ids):
        return self.head(self.tok(ids) + self.pos(torch.arange(ids.shape[1])))

model = DistributedDataParallel(Tiny())
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
ds = SluiceDataset(root, shuffle=True, seed=7, max_length=16, stride=16, batch_size=8, drop_last=True)
loader = StatefulDataLoader(ds, batch_size=8, num_workers=2)
start_epoch, log = 0, {"losses": [], "indices": []}
checkpoint = os.path.join(work, f"rank{rank}.pt")
if mode == "resume":
    saved = torch.load(checkpoint, weights_only=False)
    model.load_state_dict(saved["model"]); optimizer.load_state_dict(saved["optimizer"])
    loader.load_state_dict(saved["loader"]); start_epoch = saved["epoch"]
for epoch in range(start_epoch, 2):
    ds.set_epoch(epoch)
    for step, batch in enumerate(loader):
        logits = model(batch["inputs"])
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten())
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        log["losses"].append([epoch, loss.item()])
        log["indices"].append([epoch] + batch["index"].tolist())
        if mode == "stop" and epoch == 0 and len(log["losses"]) == 9:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "loader": loader.state_dict(), "epoch": epoch}, checkpoint)
            break
    if mode == "stop":
        break
json.dump(log, open(os.path.join(work, f"{mode}-rank{rank}.json"), "w"))
dist.destroy_process_group()
'''


@pytest.fixture(scope="module")
def output(sluice, tmp_path_factory):
    config = {
        "inputs": [str(ROOT / "examples/the-verdict.txt"), str(ROOT / "examples/mixed")],
        "tokenizer": GPT2,
        "window": {"max_length": 4, "stride": 4, "batch_size": 8},
        "shards": {"kind": "tokens"},
    }
    return run_sluice(sluice, tmp_path_factory.mktemp("train"), config)


def train(output, work, mode, port):
    script = work / "train.py"
    script.write_text(TRAIN)
    result = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port),
         str(script), str(output), mode, str(work)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads((work / f"{mode}-rank{r}.json").read_text()) for r in range(2)]


def test_two_ranks_train_two_epochs_and_resume_exactly(output, tmp_path):
    full = train(output, tmp_path, "full", 29541)
    for epoch in (0, 1):
        shares = [[i for row in log["indices"] if row[0] == epoch for i in row[1:]] for log in full]
        assert len(shares[0]) == len(shares[1]) > 0 and not set(shares[0]) & set(shares[1])
    for log in full:
        first = [loss for epoch, loss in log["losses"] if epoch == 0]
        second = [loss for epoch, loss in log["losses"] if epoch == 1]
        assert sum(second) / len(second) < sum(first) / len(first) and second[-1] < first[0]
    stopped = train(output, tmp_path, "stop", 29542)
    resumed = train(output, tmp_path, "resume", 29543)
    for rank in range(2):
        assert stopped[rank]["losses"] + resumed[rank]["losses"] == full[rank]["losses"]
        assert stopped[rank]["indices"] + resumed[rank]["indices"] == full[rank]["indices"]
