"""The model registry: checkpoints packaged as MLflow pyfunc models, registered as versions of
`mm15-<preset>` with their lineage, scores and model card, and promoted by a rule (catalogs/promotion.yaml).

    version = register_model(checkpoint, model_name("tiny"), tags=lineage, scores=report, card=card)
    decision = gate(model_name("tiny"), version)      # challenger -> champion when the rule says so

Importing this package does not import MLflow: the functions do, when called.
"""

from mm15.registry.card import model_card
from mm15.registry.gate import Decision, GateConfig, decide, gate, load_gate_config, promote
from mm15.registry.register import checkpoint_digest, list_models, model_name, register_model

__all__ = [
    "Decision",
    "GateConfig",
    "checkpoint_digest",
    "decide",
    "gate",
    "list_models",
    "load_gate_config",
    "model_card",
    "model_name",
    "promote",
    "register_model",
]
