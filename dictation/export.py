"""Export a `Whisper` model to ONNX (waveform in), gated by a parity check against torch.

Two graphs, written into one model directory:
- `encoder.onnx`: audio (1, samples) -> cross_k, cross_v (layers, 1, frames, d). The log-mel
  front end is inside the graph, so the runtime needs neither torch nor a feature library.
- `decoder.onnx`: tokens (1, n), cross_k/v, self_k/v cache (layers, 1, past, d) ->
  logits of the last position (1, vocab) and the grown cache.
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

OPSET = 17
FORMAT_VERSION = 1
# Parity tolerances (float32 torch vs onnxruntime on the same input).
CROSS_KV_ATOL = 2e-3
LOGITS_ATOL = 2e-2
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
    def __init__(self, model: Whisper) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens, cross_k, cross_v, self_k, self_v):
        n_layers = cross_k.shape[0]
        cross = [(cross_k[i], cross_v[i]) for i in range(n_layers)]
        past = [(self_k[i], self_v[i]) for i in range(n_layers)]
        dec = self.model.decoder
        offset = self_k.shape[2]
        x = dec.token_embedding(tokens) + dec.positional_embedding[offset : offset + tokens.shape[1]]
        new_k, new_v = [], []
        for i, block in enumerate(dec.blocks):
            x, (k, v) = block(x, cross_kv=cross[i], past_kv=past[i], causal=True)
            new_k.append(k)
            new_v.append(v)
        x = dec.ln(x[:, -1])  # only the last position's logits are needed when decoding
        # F.linear keeps one copy of the tied embedding in the graph (a .T would fold into a second)
        return torch.nn.functional.linear(x, dec.token_embedding.weight), torch.stack(new_k), torch.stack(new_v)


def _share_tied_embedding(path: Path, embedding_name: str = "model.decoder.token_embedding.weight") -> None:
    """Point the output projection at the token embedding instead of a transposed copy.

    The legacy exporter folds `linear(x, E)` into MatMul(x, E^T) with E^T stored as a second
    80 MB initializer; Gemm(x, E, transB=1) computes the same from the one tied copy.
    """
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(path))
    inits = {i.name: i for i in m.graph.initializer}
    emb = numpy_helper.to_array(inits[embedding_name])
    for idx, node in enumerate(m.graph.node):
        if node.op_type != "MatMul" or node.input[1] not in inits:
            continue
        w = inits[node.input[1]]
        if list(w.dims) != [emb.shape[1], emb.shape[0]] or not np.array_equal(numpy_helper.to_array(w), emb.T):
            continue
        gemm = helper.make_node("Gemm", [node.input[0], embedding_name], list(node.output),
                                name=node.name + "_tied", transB=1)
        m.graph.node.remove(node)
        m.graph.node.insert(idx, gemm)
        m.graph.initializer.remove(w)
        onnx.save(m, str(path))
        return


def _torch_reference(model: Whisper, audio: np.ndarray):
    enc = EncoderGraph(model).eval()
    dec = DecoderGraph(model).eval()
    with torch.no_grad():
        ck, cv = enc(torch.from_numpy(audio)[None])
        L, _, _, d = ck.shape
        empty = torch.zeros(L, 1, 0, d)
        logits, sk, sv = dec(torch.tensor([list(PROMPT)]), ck, cv, empty, empty)
        logits2, _, _ = dec(torch.tensor([[int(logits.argmax())]]), ck, cv, sk, sv)
    return ck.numpy(), cv.numpy(), logits.numpy(), logits2.numpy()


def check_parity(model: Whisper, model_dir: Path, seed: int = 0) -> dict:
    """Compare torch and onnxruntime on random-length inputs; raise ExportParityError on drift."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    enc = ort.InferenceSession(str(model_dir / "encoder.onnx"), opts, providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(model_dir / "decoder.onnx"), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    report = {"cross_kv_max_abs": 0.0, "logits_max_abs": 0.0, "lengths_s": [],
              "tolerance": {"cross_kv_atol": CROSS_KV_ATOL, "logits_atol": LOGITS_ATOL}}
    for seconds in PARITY_SECONDS:
        n = int(seconds * 16000) + int(rng.integers(0, 160))
        # speech-like test signal: noise shaped by a slow envelope plus a few tones
        t = np.arange(n) / 16000
        audio = (0.05 * rng.standard_normal(n) * (1 + np.sin(2 * np.pi * 3 * t))
                 + 0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        ck, cv, logits, logits2 = _torch_reference(model, audio)
        ok, ov = enc.run(None, {"audio": audio[None]})
        L, _, _, d = ok.shape
        empty = np.zeros((L, 1, 0, d), np.float32)
        ol, sk, sv = dec.run(None, {"tokens": np.array([list(PROMPT)], np.int64), "cross_k": ok,
                                    "cross_v": ov, "self_k": empty, "self_v": empty})
        ol2, _, _ = dec.run(None, {"tokens": np.array([[int(logits.argmax())]], np.int64), "cross_k": ok,
                                   "cross_v": ov, "self_k": sk, "self_v": sv})
        kv_err = float(max(np.abs(ck - ok).max(), np.abs(cv - ov).max()))
        lg_err = float(max(np.abs(logits - ol).max(), np.abs(logits2 - ol2).max()))
        report["cross_kv_max_abs"] = max(report["cross_kv_max_abs"], kv_err)
        report["logits_max_abs"] = max(report["logits_max_abs"], lg_err)
        report["lengths_s"].append(round(n / 16000, 3))
        if kv_err > CROSS_KV_ATOL or lg_err > LOGITS_ATOL or int(logits.argmax()) != int(ol.argmax()):
            raise ExportParityError(
                f"ONNX export disagrees with torch on a {n / 16000:.2f} s input: cross k/v max error "
                f"{kv_err:.2e} (tolerance {CROSS_KV_ATOL:.0e}), logits max error {lg_err:.2e} "
                f"(tolerance {LOGITS_ATOL:.0e})"
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
                DecoderGraph(graph_model).eval(), (torch.tensor([[50257, 50362]]), ck, ck, past, past),
                str(stage / "decoder.onnx"),
                input_names=["tokens", "cross_k", "cross_v", "self_k", "self_v"],
                output_names=["logits", "new_self_k", "new_self_v"],
                dynamic_axes={"tokens": {1: "n"}, "cross_k": {2: "frames"}, "cross_v": {2: "frames"},
                              "self_k": {2: "past"}, "self_v": {2: "past"},
                              "new_self_k": {2: "total"}, "new_self_v": {2: "total"}},
                opset_version=OPSET, dynamo=False,
            )
        _share_tied_embedding(stage / "decoder.onnx")
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
