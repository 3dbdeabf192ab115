"""Export a `Whisper` model to ONNX (waveform in), gated by a parity check against torch.

Two graphs, written into one model directory:
- `encoder.onnx`: audio (1, samples) -> cross_k, cross_v (layers, 1, frames, d). The log-mel
  front end is inside the graph, so the runtime needs neither torch nor a feature library.
- `decoder.onnx`: x (1, n, d) embedded tokens, cross_k/v, self_k/v cache (layers, 1,
  past, d) -> int8-projected logits of the last position (1, vocab), its hidden state
  (1, d) and the grown cache. `embedding.npy` (float16, the tied token embedding) and
  `positions.npy` let the runtime embed tokens and rescore the int8 top-k exactly.
Plus `model.json` (config, version, parity report), `tokenizer.json` and the decoding
rules `config.json`. The directory is built in a staging folder and renamed into place
only after the parity check passes: a failed export never replaces a working model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dictation.decoding import PROMPT, DecodingRules
from dictation.features import LogMel
from dictation.model.whisper import Whisper, merged_copy
from dictation.runtime import EXPORT_FORMAT_VERSION

OPSET = 17
FORMAT_VERSION = EXPORT_FORMAT_VERSION
# Parity tolerances (float32 torch vs onnxruntime on the same input).
CROSS_KV_ATOL = 2e-3
LOGITS_ATOL = 2e-2        # exactly rescored shortlist logits
INT8_LOGITS_ATOL = 2.0    # int8 projection (weights and activations), which only picks the shortlist
PARITY_SECONDS = (0.7, 2.3, 5.1)


class ExportParityError(RuntimeError):
    """The ONNX graphs disagree with torch beyond the stated tolerances."""


class EncoderGraph(nn.Module):
    def __init__(self, model: Whisper) -> None:
        super().__init__()
        self.front_end = LogMel()
        self.model = model

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.model.encoder(self.model.pad_input(self.front_end(audio)))
        kv = self.model.decoder.cross_kv(enc)
        return torch.stack([k for k, _ in kv]), torch.stack([v for _, v in kv])


class DecoderGraph(nn.Module):
    """Embedded tokens + caches -> last position's logits, its hidden state, grown caches.

    The token embedding lookup happens outside (numpy, on the float16 `embedding.npy`),
    so the graph holds the tied embedding only once: as the output projection, which
    the export then quantizes to int8 (`_quantize_projection`).
    """

    def __init__(self, model: Whisper) -> None:
        super().__init__()
        self.model = model

    def forward(self, x, cross_k, cross_v, self_k, self_v):
        n_layers = cross_k.shape[0]
        cross = [(cross_k[i], cross_v[i]) for i in range(n_layers)]
        past = [(self_k[i], self_v[i]) for i in range(n_layers)]
        dec = self.model.decoder
        new_k, new_v = [], []
        for i, block in enumerate(dec.blocks):
            x, (k, v) = block(x, cross_kv=cross[i], past_kv=past[i], causal=True)
            new_k.append(k)
            new_v.append(v)
        h = dec.ln(x[:, -1])  # only the last position's logits are needed when decoding
        return torch.matmul(h, dec.token_embedding.weight.t()), h, torch.stack(new_k), torch.stack(new_v)


def embed_tokens(model: Whisper, tokens: list[int], offset: int) -> torch.Tensor:
    """(1, n, d) decoder input: token embedding + learned position, as the runtime computes it."""
    dec = model.decoder
    t = torch.tensor([tokens])
    return dec.token_embedding(t) + dec.positional_embedding[offset : offset + len(tokens)]


def _quantize_projection(src: Path, dst: Path) -> None:
    """int8 (per output column) weights for the output projection only.

    Measured on 2 cores: the float32 projection reads 80 MB per token and was ~6 ms of a
    ~9 ms decoder step; int8 reads 20 MB. The runtime rescores the int8 top-k exactly
    (`decoding.rescore_shortlist`), so the chosen tokens stay those of the float model.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    m = onnx.load(str(src), load_external_data=False)
    inits = {i.name: list(i.dims) for i in m.graph.initializer}
    names = [n.name for n in m.graph.node
             if n.op_type == "MatMul" and len(inits.get(n.input[1], [])) == 2 and inits[n.input[1]][1] > 10000]
    if len(names) != 1:
        raise RuntimeError(f"expected one output-projection MatMul in {src}, found {names}")
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, nodes_to_quantize=names)


def _torch_reference(model: Whisper, audio: np.ndarray):
    enc = EncoderGraph(model).eval()
    dec = DecoderGraph(model).eval()
    with torch.no_grad():
        ck, cv = enc(torch.from_numpy(audio)[None])
        L, _, _, d = ck.shape
        empty = torch.zeros(L, 1, 0, d)
        logits, _, sk, sv = dec(embed_tokens(model, list(PROMPT), 0), ck, cv, empty, empty)
        first = int(logits.argmax())
        logits2, _, _, _ = dec(embed_tokens(model, [first], len(PROMPT)), ck, cv, sk, sv)
    return ck.numpy(), cv.numpy(), logits.numpy()[0], first, logits2.numpy()[0]


def check_parity(model: Whisper, model_dir: Path, seed: int = 0) -> dict:
    """Compare torch and onnxruntime (+ the runtime's rescoring) on random-length inputs;
    raise ExportParityError on drift.

    Checked per input: cross k/v, the exactly rescored logits of the int8 shortlist, the
    greedy token at both decoding steps, and the int8 logits overall (looser: they only
    choose the shortlist).
    """
    import onnxruntime as ort

    from dictation.decoding import SHORTLIST, rescore_shortlist

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    enc = ort.InferenceSession(str(model_dir / "encoder.onnx"), opts, providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(model_dir / "decoder.onnx"), opts, providers=["CPUExecutionProvider"])
    emb = np.load(model_dir / "embedding.npy")
    pos = np.load(model_dir / "positions.npy")

    def embed(tokens: list[int], offset: int) -> np.ndarray:
        return (emb[tokens].astype(np.float32) + pos[offset : offset + len(tokens)])[None]

    rng = np.random.default_rng(seed)
    report = {"cross_kv_max_abs": 0.0, "logits_max_abs": 0.0, "int8_logits_max_abs": 0.0, "lengths_s": [],
              "tolerance": {"cross_kv_atol": CROSS_KV_ATOL, "logits_atol": LOGITS_ATOL,
                            "int8_logits_atol": INT8_LOGITS_ATOL, "shortlist": SHORTLIST}}
    for seconds in PARITY_SECONDS:
        n = int(seconds * 16000) + int(rng.integers(0, 160))
        # speech-like test signal: noise shaped by a slow envelope plus a few tones
        t = np.arange(n) / 16000
        audio = (0.05 * rng.standard_normal(n) * (1 + np.sin(2 * np.pi * 3 * t))
                 + 0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        ck, cv, logits, first, logits2 = _torch_reference(model, audio)
        ok, ov = enc.run(None, {"audio": audio[None]})
        L, _, _, d = ok.shape
        empty = np.zeros((L, 1, 0, d), np.float32)
        q1, h1, sk, sv = dec.run(None, {"x": embed(list(PROMPT), 0), "cross_k": ok, "cross_v": ov,
                                        "self_k": empty, "self_v": empty})
        q2, h2, _, _ = dec.run(None, {"x": embed([first], len(PROMPT)), "cross_k": ok, "cross_v": ov,
                                      "self_k": sk, "self_v": sv})
        kv_err = float(max(np.abs(ck - ok).max(), np.abs(cv - ov).max()))
        lg_err, q_err, same_tokens = 0.0, 0.0, True
        for ref, q, h in ((logits, q1[0], h1[0]), (logits2, q2[0], h2[0])):
            exact = rescore_shortlist(q, h, emb)
            short = np.argpartition(q, -SHORTLIST)[-SHORTLIST:]
            lg_err = max(lg_err, float(np.abs(exact[short] - ref[short]).max()))
            q_err = max(q_err, float(np.abs(q - ref).max()))
            same_tokens &= int(np.argmax(exact)) == int(np.argmax(ref))
        report["cross_kv_max_abs"] = max(report["cross_kv_max_abs"], kv_err)
        report["logits_max_abs"] = max(report["logits_max_abs"], lg_err)
        report["int8_logits_max_abs"] = max(report["int8_logits_max_abs"], q_err)
        report["lengths_s"].append(round(n / 16000, 3))
        if kv_err > CROSS_KV_ATOL or lg_err > LOGITS_ATOL or q_err > INT8_LOGITS_ATOL or not same_tokens:
            raise ExportParityError(
                f"ONNX export disagrees with torch on a {n / 16000:.2f} s input: cross k/v max error "
                f"{kv_err:.2e} (tolerance {CROSS_KV_ATOL:.0e}), rescored logits max error {lg_err:.2e} "
                f"(tolerance {LOGITS_ATOL:.0e}), int8 logits max error {q_err:.2e} (tolerance "
                f"{INT8_LOGITS_ATOL:.0e}), same greedy tokens: {same_tokens}"
            )
    return report


def export_model(
    model: Whisper,
    out_dir: Path,
    tokenizer_json: Path,
    rules_json: Path,
    metadata: dict | None = None,
) -> dict:
    """Export, check parity, then move the finished directory to `out_dir` atomically.

    Returns the model.json contents (including the parity report). `out_dir` must not
    exist yet or is replaced only after the new export has passed its check.
    """
    model = model.eval()
    graph_model = merged_copy(model)  # LoRA folded in; the parity check compares with `model`
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir.parent))
    try:
        t0 = time.time()
        L, d = model.cfg.n_text_layers, model.cfg.d_model
        audio = torch.zeros(1, 32000)
        with torch.no_grad():
            torch.onnx.export(
                EncoderGraph(graph_model).eval(), (audio,), str(stage / "encoder.onnx"),
                input_names=["audio"], output_names=["cross_k", "cross_v"],
                dynamic_axes={"audio": {1: "samples"}, "cross_k": {2: "frames"}, "cross_v": {2: "frames"}},
                opset_version=OPSET, dynamo=False,
            )
            ck = torch.zeros(L, 1, 100, d)
            past = torch.zeros(L, 1, 2, d)
            torch.onnx.export(
                DecoderGraph(graph_model).eval(), (torch.zeros(1, 2, d), ck, ck, past, past),
                str(stage / "decoder-float.onnx"),
                input_names=["x", "cross_k", "cross_v", "self_k", "self_v"],
                output_names=["logits", "hidden", "new_self_k", "new_self_v"],
                dynamic_axes={"x": {1: "n"}, "cross_k": {2: "frames"}, "cross_v": {2: "frames"},
                              "self_k": {2: "past"}, "self_v": {2: "past"},
                              "new_self_k": {2: "total"}, "new_self_v": {2: "total"}},
                opset_version=OPSET, dynamo=False,
            )
        _quantize_projection(stage / "decoder-float.onnx", stage / "decoder.onnx")
        (stage / "decoder-float.onnx").unlink()
        dec = graph_model.decoder
        np.save(stage / "embedding.npy", dec.token_embedding.weight.detach().numpy().astype(np.float16))
        np.save(stage / "positions.npy", dec.positional_embedding.detach().numpy().astype(np.float32))
        shutil.copyfile(tokenizer_json, stage / "tokenizer.json")
        shutil.copyfile(rules_json, stage / "config.json")
        DecodingRules.from_config(stage / "config.json")  # fail now, not at dictation time
        parity = check_parity(model, stage)
        info = {
            "format_version": FORMAT_VERSION,
            "whisper_config": model.cfg.to_dict(),
            "pad_frames": model.cfg.pad_frames,
            "opset": OPSET,
            "parity": parity,
            "export_seconds": round(time.time() - t0, 2),
            **(metadata or {}),
        }
        (stage / "model.json").write_text(json.dumps(info, indent=2))
        for f in stage.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if out_dir.exists():
            old = out_dir.with_name(out_dir.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out_dir, old)
            os.replace(stage, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, out_dir)
        return info
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
