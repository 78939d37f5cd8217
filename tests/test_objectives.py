"""The AE objectives against the likelihoods they stand for, computed by hand."""

import torch

from course_lib.losses import BCEObjective, MSEObjective
from course_lib.models import ModelConfig, build_model


def test_ae_objectives_are_the_bernoulli_and_gaussian_negative_log_likelihoods_by_hand():
    torch.manual_seed(0)
    ae = build_model(ModelConfig("ae", 3, (16,), (16,))).eval()
    x = torch.rand(4, 1, 28, 28)
    p = ae(x).flatten(1).double()
    target = x.flatten(1).double()
    bernoulli = -(target * p.log() + (1 - target) * (1 - p).log()).sum(1)
    assert torch.allclose(BCEObjective()(ae, x, x, None).double(), bernoulli, rtol=1e-5)
    assert torch.allclose(MSEObjective()(ae, x, x, None).double(), (p - target).pow(2).mean(1), rtol=1e-5)
    # the target, not the input, is what the reconstruction is scored against
    assert not torch.allclose(BCEObjective()(ae, x, torch.zeros_like(x), None), BCEObjective()(ae, x, x, None))
