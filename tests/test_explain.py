"""bp.explain: the numbers each method reports, checked against independent computations."""

from __future__ import annotations

import base64
import io
import json
import math
import urllib.error
import urllib.request

import pytest
import torch
from PIL import Image

import blackprop as bp
from blackprop.explain.programs import offered_programs, rescaled
from blackprop.explain.server import explain_request, start

P_A, P_B = [0.1, 0.6, 0.3], [0.2, 0.1, 0.7]


@pytest.fixture(scope="module")
def blog(one_thread):
    return bp.explain(None, seed=0)


def test_exact_enumeration_is_the_blogs_vector(blog):
    assert blog["methods"]["exact"]["output"] == pytest.approx([0.02, 0.13, 0.19, 0.45, 0.21], abs=1e-12)
    assert blog["target"] == 3 and blog["target_index"] == 3
    assert blog["methods"]["exact"]["loss"] == pytest.approx(-math.log(0.45), abs=1e-12)


def test_exact_gradient_is_the_derivative_of_minus_log_p3(blog):
    # p(3) = pa(1) pb(2) + pa(2) pb(1); d/dp -log p(3) by hand
    p3 = 0.6 * 0.7 + 0.3 * 0.1
    expected = [[0.0, -0.7 / p3, -0.1 / p3], [0.0, -0.3 / p3, -0.6 / p3]]
    for got, want in zip(blog["exact_gradient"], expected, strict=True):
        assert got == pytest.approx(want, abs=1e-12)
    for key, method in blog["methods"].items():
        assert method["difference"] == [[g - e for g, e in zip(gs, es, strict=True)]
                                        for gs, es in zip(method["gradient"], blog["exact_gradient"], strict=True)], key


def test_top_k_proofs(blog):
    top1, top3 = blog["methods"]["top-1"], blog["methods"]["top-3"]
    # y=2 has proofs (0,2)=.07, (1,1)=.06, (2,0)=.06: top-1 keeps .07; y=3 keeps (1,2)=.42
    assert top1["output"] == pytest.approx([0.02, 0.12, 0.07, 0.42, 0.21], abs=1e-12)
    assert top1["gradient"][0] == pytest.approx([0, -1 / 0.6, 0], abs=1e-12)
    assert top1["gradient"][1] == pytest.approx([0, 0, -1 / 0.7], abs=1e-12)
    assert sorted(t["tuple"] for t in top1["terms"] if t["output"] == 3) == [[1, 2]]
    # no output of a+b on 0..2 has more than 3 proofs: top-3 is exact
    assert top3["output"] == pytest.approx(blog["methods"]["exact"]["output"], abs=1e-12)
    assert top3["gradient"] == [pytest.approx(g, abs=1e-12) for g in blog["exact_gradient"]]


def _blog_program():
    return bp.Program(lambda a, b: a + b, (bp.Discrete(range(3)),) * 2, bp.Discrete(range(5)))


def _direct(estimator):
    """Output, loss and gradient of ``estimator`` on the blog's example through a BlackBox seeded 0."""
    pa = torch.tensor([P_A], dtype=torch.float64, requires_grad=True)
    pb = torch.tensor([P_B], dtype=torch.float64, requires_grad=True)
    layer = bp.BlackBox(_blog_program(), estimator, seed=0)
    loss = layer.loss(pa, pb, target=[3])
    grads = torch.autograd.grad(loss, [pa, pb])
    output = bp.BlackBox(_blog_program(), estimator, seed=0)(pa.detach(), pb.detach())[0]
    return output.tolist(), loss.item(), [g[0].tolist() for g in grads]


def test_the_papers_ised_samples_terms_output_and_gradient_agree(blog):
    ised = blog["methods"]["ised-paper"]
    drawn = bp.Beliefs.from_inputs((bp.Discrete(range(3)),) * 2,
                                   (torch.tensor([P_A], dtype=torch.float64), torch.tensor([P_B], dtype=torch.float64)))
    tuples = drawn.sample(5, torch.Generator().manual_seed(0))[0].tolist()
    assert [s["tuple"] for s in ised["samples"]] == tuples
    assert [s["output"] for s in ised["samples"]] == [a + b for a, b in tuples]
    # independently: w(y) = sum of pa*pb over the samples giving y (probability weights), q = w / ||w||_2
    w = [0.0] * 5
    for a, b in tuples:
        w[a + b] += P_A[a] * P_B[b]
    assert ised["aggregate"] == pytest.approx(w, abs=1e-12)
    norm = math.sqrt(sum(v * v for v in w))
    assert ised["output"] == pytest.approx([v / norm for v in w], abs=1e-12)
    output, loss, gradient = _direct(bp.estimator("ised-paper", num_samples=5))
    assert ised["output"] == pytest.approx(output, abs=1e-12) and ised["loss"] == pytest.approx(loss, abs=1e-12)
    assert ised["gradient"] == [pytest.approx(g, abs=1e-12) for g in gradient]
    for term in ised["terms"]:
        (va, ca), (vb, cb) = term["factors"]
        assert term["value"] == pytest.approx(P_A[ca] * P_B[cb], abs=1e-12)


def test_the_default_ised_shows_its_redrawn_samples_and_importance_weights(blog):
    ised = blog["methods"]["ised"]
    beliefs = bp.Beliefs.from_inputs((bp.Discrete(range(3)),) * 2,
                                     (torch.tensor([P_A], dtype=torch.float64), torch.tensor([P_B], dtype=torch.float64)))
    from blackprop.estimators.ised import redraw_one_site

    estimator = bp.ISED(num_samples=5)
    generator = torch.Generator().manual_seed(0)
    draws = estimator.site_draws(beliefs)
    assert draws == 2  # "auto": m = min(0.5, 5 * 2 / 5), round(0.5 * 5) = 2 draws with one position redrawn
    tuples = redraw_one_site(beliefs, beliefs.sample(5, generator), draws, generator)[0].tolist()
    assert [s["tuple"] for s in ised["samples"]] == tuples
    assert [bool(s.get("redrawn")) for s in ised["samples"]] == [False, False, False, True, True]
    output, loss, gradient = _direct(estimator)
    assert ised["output"] == pytest.approx(output, abs=1e-12) and ised["loss"] == pytest.approx(loss, abs=1e-12)
    assert ised["gradient"] == [pytest.approx(g, abs=1e-12) for g in gradient]
    # add-mult: each output's aggregate is the sum of its draws' weights, and the L1 output divides by
    # the weight of every draw
    for y, w in enumerate(ised["aggregate"]):
        assert w == pytest.approx(sum(t["value"] for t in ised["terms"] if t["output"] == y), abs=1e-12)
    assert ised["output"] == pytest.approx([w / sum(ised["aggregate"]) for w in ised["aggregate"]], abs=1e-12)


def test_ised_within_its_budget_shows_every_tuple_and_the_exact_sum():
    """k = 9 covers the blog's 9 tuples: the default ISED draws nothing and its page shows the 9 terms
    p(x) and Exact's output, loss and gradient (what the estimator computes)."""
    data = bp.explain(None, seed=0, num_samples=9, methods=["exact", "ised"])
    ised, exact = data["methods"]["ised"], data["methods"]["exact"]
    assert ised["samples"] == [] and len(ised["terms"]) == 9
    assert "covers all 9 input tuples" in ised["formula"]
    assert ised["output"] == pytest.approx(exact["output"], abs=1e-12)
    assert ised["aggregate"] == pytest.approx([0.02, 0.13, 0.19, 0.45, 0.21], abs=1e-12)
    assert ised["loss"] == pytest.approx(exact["loss"], abs=1e-12)
    assert ised["gradient"] == [pytest.approx(g, abs=1e-12) for g in data["exact_gradient"]]
    drawn = bp.explain(None, seed=0, num_samples=8, methods=["ised"])["methods"]["ised"]
    assert len(drawn["samples"]) == 8  # one tuple short of the space: draws


def test_min_max_terms_are_the_least_factor():
    data = bp.explain(None, seed=3, semiring="min-max", methods=["ised"])
    ised = data["methods"]["ised"]
    assert ised["semiring"] == "min-max" and ised["terms"]
    for term in ised["terms"]:
        assert term["value"] == pytest.approx(min(data["probs"][v][c] for v, c in term["factors"]), abs=1e-12)
    for y, w in enumerate(ised["aggregate"]):
        values = [t["value"] for t in ised["terms"] if t["output"] == y]
        assert w == pytest.approx(max(values) if values else 0.0, abs=1e-12)


@pytest.mark.parametrize("key", ["reinforce", "reinforce-loo"])
def test_reinforce_gradient_is_the_sum_of_its_terms(key):
    data = bp.explain(None, seed=1, num_samples=8, methods=[key])
    method = data["methods"][key]
    p_hat = method["estimate"]
    assert 0 < p_hat == sum(s["reward"] for s in method["samples"]) / 8
    # gradient of -log p_hat: -1/p_hat * sum_s coefficient_s * d log p(x_s) / dp
    expected = [[0.0] * 3, [0.0] * 3]
    for term in method["terms"]:
        for v, c in term["factors"]:
            expected[v][c] -= term["value"] / data["probs"][v][c] / p_hat
    for got, want in zip(method["gradient"], expected, strict=True):
        assert got == pytest.approx(want, abs=1e-6)  # the library's rewards are float32
    if key == "reinforce-loo":
        rewards = [s["reward"] for s in method["samples"]]
        assert [s["baseline"] for s in method["samples"]] == pytest.approx(
            [(sum(rewards) - f) / 7 for f in rewards], abs=1e-12)


@pytest.mark.parametrize("key", ["indecater", "indecater+"])
def test_indecater_gradient_is_f_bar_over_p_hat(key):
    data = bp.explain(None, seed=0, methods=[key])
    method = data["methods"][key]
    p_hat = method["estimate"]
    assert p_hat > 0 and method["loss"] == pytest.approx(-math.log(p_hat), abs=1e-12)
    for term in method["terms"]:
        assert method["gradient"][term["variable"]][term["class"]] == pytest.approx(-term["f_bar"] / p_hat, abs=1e-12)
        hits = [s["output"] == 3 for s in term["swept"]]
        assert term["f_bar"] == sum(hits) / len(hits)


def test_same_seed_same_numbers_new_seed_new_draws():
    first = bp.explain(None, seed=4, methods=["ised", "reinforce", "nasr"])
    again = bp.explain(None, seed=4, methods=["ised", "reinforce", "nasr"])
    other = bp.explain(None, seed=5, methods=["ised", "reinforce", "nasr"])
    assert first == again
    assert any(first["methods"][k]["samples"] != other["methods"][k]["samples"] for k in ("ised", "reinforce", "nasr"))


def test_anesi_reports_its_training_and_a_gradient(blog):
    anesi = blog["methods"]["anesi"]
    assert anesi["history"][-1]["step"] == 300
    assert anesi["history"][-1]["l1_to_exact"] < anesi["history"][0]["l1_to_exact"]
    # The surrogate keeps a "program failed" outcome; no tuple fails here, so it learns little mass for it.
    assert 0.99 < sum(anesi["output"]) <= 1.0 + 1e-9
    assert any(abs(g) > 0 for row in anesi["gradient"] for g in row)


def test_users_layer_and_task_programs():
    colour = bp.Discrete(["red", "green"])
    program = bp.Program(lambda c, s: f"{c}-{s}", inputs=(colour, bp.Discrete(["o", "x"])),
                         output=bp.Discrete(["red-o", "red-x", "green-o", "green-x"]))
    data = bp.explain(bp.BlackBox(program, bp.ISED(num_samples=7)), torch.tensor([.3, .7], dtype=torch.float64), torch.tensor([.5, .5]),
                      target="green-x", methods=["exact"])
    assert data["methods"]["exact"]["output"] == pytest.approx([.15, .15, .35, .35], abs=1e-9)
    assert data["methods"]["layer"]["settings"]["num_samples"] == 7
    assert data["program"]["inputs"][0] == {"name": "c", "values": ["red", "green"]}
    assert set(offered_programs()) == {"blog", "sum2", "sum3", "sum4", "mult2", "mod2", "add-mod-3", "add-sub",
                                       "less-than", "equal", "not-3-or-4", "leaf-dt"}


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="explain needs Discrete inputs"):
        bp.explain(bp.Program(len, inputs=(bp.Sequence(bp.Discrete(range(3)), 4),), output=bp.Discrete(range(5))),
                   torch.ones(4, 3) / 3, target=2)
    with pytest.raises(TypeError, match="takes 2 input"):
        bp.explain(None, torch.tensor(P_A), target=3)
    with pytest.raises(ValueError, match="target"):
        bp.explain(None, torch.tensor(P_A), torch.tensor(P_B), target=11)
    with pytest.raises(ValueError, match="unknown method"):
        bp.explain(None, methods=["magic"])
    bad = bp.explain(None, seed=0, num_samples=1, methods=["reinforce-loo"])["methods"]["reinforce-loo"]
    assert "num_samples >= 2" in bad["error"]


def test_edit_rescales_the_other_probabilities():
    assert rescaled([0.1, 0.6, 0.3], 1, 0.2) == pytest.approx([0.2, 0.2, 0.6])
    data = explain_request({"seed": 0, "k": 5, "probs": [P_A, P_B], "edited": [0, 1, 0.2], "target_index": 2})
    expected = bp.explain(None, torch.tensor([0.2, 0.2, 0.6], dtype=torch.float64),
                          torch.tensor(P_B, dtype=torch.float64), target=2)
    assert data["probs"][0] == pytest.approx([0.2, 0.2, 0.6], abs=1e-12)
    assert data["methods"]["ised"]["gradient"] == expected["methods"]["ised"]["gradient"]
    with pytest.raises(ValueError, match="k: give an integer"):
        explain_request({"k": 0})


def test_server_answers_over_http():
    server = start(port=0, gallery=False)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        page = urllib.request.urlopen(base + "/", timeout=60).read().decode()
        assert "blackprop explain" in page and 'src="http' not in page and "href=\"http" not in page
        body = json.dumps({"seed": 2, "k": 6, "semiring": "max-mult"}).encode()
        request = urllib.request.Request(base + "/api/explain", data=body, headers={"Content-Type": "application/json"})
        reply = json.loads(urllib.request.urlopen(request, timeout=60).read())
        assert reply["methods"]["ised"] == bp.explain(None, seed=2, num_samples=6, semiring="max-mult")["methods"]["ised"]
        bad = urllib.request.Request(base + "/api/explain", data=b'{"semiring": "tropical"}')
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(bad, timeout=60)
        assert error.value.code == 400 and "semiring" in json.loads(error.value.read())["error"]
    finally:
        server.shutdown()
        server.server_close()


def test_gallery_entry_reads_real_digits():
    from blackprop.explain.gallery import task_entry

    entry = task_entry("sum2", examples=2)
    assert "def sum_digits" in entry["source"]
    for example in entry["examples"]:
        assert len(example["images"]) == 2 and len(example["symbols"]) == 2
        assert example["output"] == sum(example["symbols"])
        picture = Image.open(io.BytesIO(base64.b64decode(example["images"][0].split(",", 1)[1])))
        assert picture.format == "PNG" and picture.size == (56, 56)


def test_cli_help_and_export_errors(capsys, tmp_path):
    from blackprop.cli import main

    with pytest.raises(SystemExit) as done:
        main(["explain", "--help"])
    assert done.value.code == 0 and "--export" in capsys.readouterr().out
    assert main(["explain", "--export", str(tmp_path / "missing" / "page.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
