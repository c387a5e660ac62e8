"""Training: stages as data (catalogs/stages/), manifests packed into rows, and the resumable trainer.

from mm15.train import TrainRequest, train
summary = train(TrainRequest(stage="cpt", preset="tiny", out=Path("runs/cpt")))
"""

from mm15.train.config import StageConfig, load_stage
from mm15.train.preemption import PREEMPTED_EXIT, Preempted
from mm15.train.trainer import TrainRequest, train

__all__ = ["PREEMPTED_EXIT", "Preempted", "StageConfig", "TrainRequest", "load_stage", "train"]
