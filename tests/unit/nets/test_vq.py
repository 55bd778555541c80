"""The VQ tokenizer: nearest-code snapping, the straight-through gradient, the EMA codebook, dead-code restarts."""

import pytest
import torch

from app.measure.tokens import codebook_usage
from app.nets.vq import VQ_SIZES, VectorQuantizer, VQTokenizer


def quantizer_with(codes: list[list[float]]) -> VectorQuantizer:
    q = VectorQuantizer(len(codes), len(codes[0]), decay=0.5, dead_below=0.0)
    q.codebook.copy_(torch.tensor(codes))
    q.code_sum.copy_(q.codebook)
    q.initialised.fill_(True)
    return q.eval()


def test_each_vector_snaps_to_its_nearest_code():
    q = quantizer_with([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    z = torch.tensor([[0.1, -0.1], [0.9, 0.3], [0.2, 1.4], [0.6, 0.0]]).T.reshape(1, 2, 2, 2)  # (1, D, h, w)
    quantized, indices, commitment = q(z)
    assert indices.flatten().tolist() == [0, 1, 2, 1]
    assert torch.equal(quantized, q.lookup(indices))
    assert commitment.item() == pytest.approx(((z - quantized) ** 2).mean().item())


def test_the_gradient_passes_the_snap_unchanged():
    q = quantizer_with([[0.0, 0.0], [1.0, 0.0]])
    z = torch.tensor([[0.2, 0.1], [0.8, -0.1]]).T.reshape(1, 2, 1, 2).requires_grad_()
    quantized, _, _ = q(z)
    (quantized * torch.tensor([3.0, 5.0]).view(1, 2, 1, 1)).sum().backward()
    assert torch.equal(z.grad, torch.tensor([3.0, 5.0]).view(1, 2, 1, 1).expand(1, 2, 1, 2))


def test_training_moves_each_code_towards_the_mean_of_its_vectors():
    q = quantizer_with([[0.0, 0.0], [4.0, 4.0]]).train()
    z = torch.tensor([[1.0, 1.0], [3.0, 3.0], [5.0, 5.0], [3.0, 5.0]]).T.reshape(1, 2, 2, 2)
    q(z)
    # decay 0.5: count 1 -> 0.5 + 0.5 * 1 and 0.5 + 0.5 * 3; sum halfway to the assigned vectors' sum
    assert q.cluster_size.tolist() == [1.0, 2.0]
    assert q.codebook[0].tolist() == pytest.approx([0.5, 0.5])
    assert q.codebook[1].tolist() == pytest.approx([(2 + 5.5) / 2, (2 + 6.5) / 2])


def test_a_code_no_vector_picks_is_restarted_on_an_encoder_output():
    q = VectorQuantizer(3, 2, decay=0.5, dead_below=0.6).train()
    z = torch.tensor([[1.0, 1.0], [1.1, 0.9]]).T.reshape(1, 2, 1, 2)
    q(z)  # first batch: every code starts on an encoder output
    assert q.initialised
    assert all(min((c - v).norm() for v in z.flatten(2)[0].T) < 1e-6 for c in q.codebook)
    q.codebook[2] = torch.tensor([50.0, 50.0])
    q.code_sum[2] = q.codebook[2]
    q(z)  # code 2 gets nothing: its count halves to 0.5 < 0.6 and it is moved back onto the data
    assert q.codebook[2].norm() < 2


def test_the_tokenizer_turns_an_image_into_a_grid_of_codes_and_back():
    torch.manual_seed(0)
    tok = VQTokenizer(VQ_SIZES["tiny"]()).eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    tokens = tok.encode(x, chunk=2)
    assert tokens.shape == (3, 8, 8) and tokens.dtype == torch.long
    assert 0 <= int(tokens.min()) and int(tokens.max()) < tok.codebook_size
    images = tok.decode(tokens)
    assert images.shape == (3, 3, 32, 32) and images.abs().max() <= 1
    assert torch.equal(tok.reconstruct(x), images)
    _, indices, _ = tok(x)
    assert torch.equal(indices, tokens)


def test_codebook_usage_counts_codes_and_their_perplexity():
    assert codebook_usage(torch.tensor([0, 1, 2, 3]), 8) == {"codes_used": 4, "dead_codes": 4,
                                                             "perplexity": pytest.approx(4.0)}
    assert codebook_usage(torch.tensor([5, 5, 5]), 8)["perplexity"] == pytest.approx(1.0)
