"""The ``pathviz`` command (also ``python -m pathviz``).

Commands::

    pathviz slide info PATH [--mpp MPP] [--json]
    pathviz slide tiles PATH --mpp 0.5 --size 256 --out FILE [--min-tissue 0.5] [--slide-mpp MPP] [--json]
    pathviz slide add PATH [--mpp MPP] [--copy] [--name NAME] [--json]
    pathviz slide list [--json]
    pathviz slide analyse SLIDE_ID [--mpp 0.5] [--size 256] [--min-tissue 0.5] [--json]
    pathviz demo [--cohort-seed N] [--patients N] [--json]
    pathviz export-geojson SLIDE_ID --out FILE [--layer haematoxylin] [--top-k 20] [--csv FILE] [--json]
    pathviz survival km --cohort NAME --group-by COLUMN|risk [--cutoff median|optimal|VALUE] [--json]
    pathviz survival cindex --cohort NAME [--seed N] [--json]
    pathviz cohort list [--json] | show NAME | add PATH --format tcga|cbioportal|gdc|csv [--name N] [--mapping F] [--slides DIR [--slide-map F]] | remove NAME
    pathviz models list [--kind K] [--json] | show KIND/NAME[@VERSION] | promote KIND/NAME@VERSION [--alias A]
    pathviz models rollback KIND/NAME [--alias A]
    pathviz train coxpasnet --cohort NAME --genesets kegg|go_bp|FILE.gmt [--seed N] [--repeats R] [--endpoint KEY] [--missing-omics exclude|impute]
    pathviz train pagenet --cohort demo [--seed N]
    pathviz train mil|crossattn --cohort NAME [--seed N] [--encoder resnet18|resnet50|pagenet_cnn|timm:MODEL] [--weights FILE]
        (both submit a job, wait for it and print the new registry version's figures)
    pathviz jobs submit KIND --cohort NAME [--param key=value ...] [--json] | status ID | wait ID | cancel ID
    pathviz jobs list [--status S] | kinds
    pathviz worker [--once] [--device D]
    pathviz pathways rank --model KIND/NAME[@VERSION]|DIR --top 20 [--json]
    pathviz heatmap SLIDE_ID [--model pagenet/NAME[@VERSION]] --kind survival-maps --out FILE.png
    pathviz users list | add NAME --roles R[,R] | roles NAME R[,R] | disable NAME | enable NAME | reset-password NAME
    pathviz backup OUT [--with-slides] | restore BACKUP [--force]
    pathviz audit verify | list [--user-name U] [--action A] [--text T] [--since T] [--until T] | export --out FILE.csv

Global option ``--user NAME`` (or ``PATHVIZ_USER``; password from ``PATHVIZ_PASSWORD`` or a prompt)
runs a command as that PathViz account, with its roles: a pathologist submitting a job is refused.
Without it the command runs as the server's operator (``os:<login>``), who owns the workspace files
and acts as admin. Changes are written to the audit log under that name.

Errors print one line ``error: <what is wrong> Fix: <what to do>`` to stderr and exit with status 2.
Every model figure is printed with its held-out C-index, 95% bootstrap CI (fixed resamples and
seed, :mod:`pathviz.survival.chance`) and a warning when the CI includes 0.5.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pathviz.errors import PathVizError


def _print(args, payload: dict, text: str) -> None:
    print(json.dumps(payload, indent=2) if args.json else text)


def cmd_slide_info(args) -> int:
    from pathviz.slide import open_slide

    with open_slide(args.path, mpp=args.mpp) as s:
        info = s.info().to_dict()
    text = "\n".join(
        [
            f"path:          {info['path']}",
            f"vendor:        {info['vendor']}",
            f"dimensions:    {info['width']} x {info['height']} px (level 0)",
            f"levels:        {info['level_count']}",
            "level dims:    " + ", ".join(f"{w}x{h}" for w, h in info["level_dimensions"]),
            "downsamples:   " + ", ".join(f"{d:g}" for d in info["level_downsamples"]),
            f"mpp:           {info['mpp_x']:.4g} x {info['mpp_y']:.4g} um/px ({info['mpp_source']})",
            f"objective:     {info['objective_power'] if info['objective_power'] is not None else 'unknown'}",
        ]
    )
    _print(args, info, text)
    return 0


def cmd_slide_tiles(args) -> int:
    from pathviz.slide import open_slide, tile_grid, tissue_mask

    out = Path(args.out)
    with open_slide(args.path, mpp=args.slide_mpp) as s:
        mask = tissue_mask(s)
        grid = tile_grid(s, mask, mpp=args.mpp, patch_size=args.size, min_tissue=args.min_tissue)
    if out.suffix.lower() == ".csv":
        out.parent.mkdir(parents=True, exist_ok=True)
        grid.to_table().to_csv(out, index=False)
    else:
        grid.save(out if out.suffix == ".npz" else out.with_suffix(".npz"))
    payload = {
        "path": str(Path(args.path).resolve()),
        "n_tiles": len(grid),
        "mpp": grid.mpp,
        "patch_size": grid.patch_size,
        "tile_size_level0": [grid.tile_size_x, grid.tile_size_y],
        "lattice": [grid.n_cols, grid.n_rows],
        "min_tissue": grid.min_tissue,
        "out": str(out),
    }
    _print(args, payload, f"{len(grid)} tissue tiles ({grid.patch_size}px at {grid.mpp} mpp) -> {out}")
    return 0


def _workspace():
    from pathviz.store.workspace import Workspace

    return Workspace()


_ACTOR = None


def _actor(args=None):
    """Who runs this command: ``--user NAME`` (or ``PATHVIZ_USER``), authenticated with
    ``PATHVIZ_PASSWORD`` or a password prompt, acting with that account's roles; without it, the
    operator who runs the CLI on the server (``os:<login>``, acts as admin: they own the workspace
    files). Every action is audited under this name."""
    global _ACTOR
    import os

    from pathviz.auth.policy import operator

    if _ACTOR is not None:
        return _ACTOR
    name = getattr(args, "user", None) or os.environ.get("PATHVIZ_USER", "")
    if not name:
        _ACTOR = operator()
        return _ACTOR
    password = os.environ.get("PATHVIZ_PASSWORD")
    if password is None:
        import getpass

        password = getpass.getpass(f"password for {name}: ")
    _ACTOR = _workspace().accounts.authenticate(name, password, client="cli")
    return _ACTOR


def _record_dict(rec) -> dict:
    return {
        "slide_id": rec.slide_id,
        "name": rec.name,
        "path": rec.path,
        "mpp": rec.mpp,
        "declared_mpp": rec.declared_mpp,
        "width": rec.width,
        "height": rec.height,
        "vendor": rec.vendor,
        "source": rec.source,
    }


def cmd_slide_add(args) -> int:
    ws = _workspace()
    actor = _actor(args)
    from pathviz.auth.policy import require

    require(actor, "slides.manage", "add slides")
    rec = ws.add_slide(args.path, mpp=args.mpp, name=args.name, copy=args.copy, added_by=actor.username)
    ws.audit.record(actor, "slide.added", "slide", rec.slide_id, {"how": "cli-copy" if args.copy else "cli", "mpp": rec.mpp})
    corrupt = ws.integrity(rec.slide_id, found_by="registration")
    payload = dict(_record_dict(rec), content_sha256=rec.content_sha256, integrity=[r.to_dict() for r in corrupt])
    _print(args, payload, f"added {rec.slide_id} ({rec.width}x{rec.height}, {rec.mpp:.4g} mpp)")
    if corrupt and not args.json:
        where = "; ".join(r.describe() for r in corrupt[:5]) + (f"; and {len(corrupt) - 5} more" if len(corrupt) > 5 else "")
        print(f"warning: {len(corrupt)} sampled tile{'s' if len(corrupt) != 1 else ''} of {rec.slide_id} could not be "
              f"decoded (corrupt regions: {where}); analysis skips the patches there. Fix: copy the file again from "
              "the scanner or archive.", file=sys.stderr)
    return 0


def cmd_slide_list(args) -> int:
    recs = _workspace().slides()
    rows = [_record_dict(r) for r in recs]
    text = "\n".join(f"{r['slide_id']:<40} {r['width']}x{r['height']}  {r['mpp']:.4g} mpp  {r['name']}" for r in rows)
    _print(args, {"slides": rows}, text or "no slides (run `pathviz demo` or `pathviz slide add PATH`)")
    return 0


def cmd_slide_analyse(args) -> int:
    from pathviz.store.workspace import skipped_summary

    ws = _workspace()
    grid = ws.analyse(args.slide_id, mpp=args.mpp, patch_size=args.size, min_tissue=args.min_tissue, force=True)
    layers = ws.layer_names(args.slide_id)
    skipped = ws.integrity(args.slide_id, found_by="analysis", grid_key=grid.key)
    text = f"{args.slide_id}: {len(grid)} tiles on grid {grid.key}; layers: {', '.join(layers)}"
    if skipped:
        text += f"\n{skipped_summary(skipped)}"
    _print(args, {"slide_id": args.slide_id, "n_tiles": len(grid), "grid": grid.key, "layers": layers,
                  "skipped": [r.to_dict() for r in skipped]}, text)
    return 0


def cmd_demo(args) -> int:
    """Build the demo workspace as the dashboard does: one ``demo`` job (the one already queued or
    running, if any), waited for; safe to run beside the dashboard's first start."""
    from pathviz.jobs.queue import JobQueue
    from pathviz.jobs.worker import ensure_worker

    ws = _workspace()
    t0 = time.perf_counter()
    queue = JobQueue(ws.db, ws.home)
    active = queue.active("demo")
    patients = args.patients if args.patients is not None else ws.settings.demo_patients
    params = {k: v for k, v in (("cohort_seed", args.cohort_seed), ("patients", patients)) if v is not None}
    if active and params and any(active[0].params.get(k) != v for k, v in params.items()):
        raise PathVizError(f"A demo build (job {active[0].id}) is already running with {active[0].params}.",
                           "wait for it (`pathviz jobs show ID`), or cancel it first.")
    job = active[0] if active else queue.submit("demo", params, actor=_actor(args))
    ensure_worker(ws.home, job.device)
    job = _wait(ws, job.id, quiet=args.json)
    if job.status != "succeeded":
        raise PathVizError(f"The demo build (job {job.id}) {job.status}: {job.error or job.message}",
                           "run `pathviz demo` again: built parts are kept" + (f"; log: {job.log_path}" if job.log_path else ""))
    ids = job.result["slides"]
    seconds = time.perf_counter() - t0
    _print(args, {"workspace": str(ws.home), "slides": ids, "job": job.id, "seconds": round(seconds, 2)},
           f"demo workspace ready at {ws.home}: {', '.join(ids)} ({seconds:.1f} s, job {job.id})")
    return 0


def cmd_export_geojson(args) -> int:
    from pathviz.report.export import export_csv, export_geojson

    ws = _workspace()
    n = export_geojson(ws, args.slide_id, args.layer, args.out, top_k=args.top_k)
    payload = {"slide_id": args.slide_id, "layer": args.layer, "features": n, "out": str(args.out)}
    if args.csv:
        export_csv(ws, args.slide_id, args.layer, args.csv, top_k=args.top_k)
        payload["csv"] = str(args.csv)
    _print(args, payload, f"{n} flagged patches of layer {args.layer} -> {args.out}")
    return 0


def _fmt_ci(v, lo, hi) -> str:
    f = lambda x: "NR" if x is None else f"{x:.1f}"  # noqa: E731 (NR = not reached)
    return f"{f(v)} ({f(lo)}-{f(hi)})"


def _print_comparison(summary: dict) -> str:
    from pathviz.survival import p_label

    lines = [f"{'group':<14}{'n':>6}{'events':>8}   median months (95% CI)"]
    for g in summary["groups"]:
        lines.append(f"{g['group']:<14}{g['n']:>6}{g['events']:>8}   {_fmt_ci(g['median_months'], *g['median_ci'])}")
    if summary["logrank"]:
        lr = summary["logrank"]
        lines.append(f"log-rank chi2={lr['chi2']:.3f} (df {lr['df']}), {p_label(lr['p_value'])}")
    if summary.get("trend"):
        lines.append(f"trend chi2={summary['trend']['chi2']:.3f}, {p_label(summary['trend']['p_value'])}")
    for h in summary["hazard_ratios"]:
        if h["hazard_ratio"] is None:
            lines.append(f"HR {h['term']}: not estimable ({h['note']})")
        else:
            lines.append(f"HR {h['term']}: {h['hazard_ratio']:.2f} (95% CI {h['ci_95'][0]:.2f}-{h['ci_95'][1]:.2f}), "
                         f"{p_label(h['p_value'])}")
    if "cutoff" in summary:
        c = summary["cutoff"]
        lines.append(f"cut-off: {c['method']} {', '.join(f'{v:.4g}' for v in c['values'])} fitted on {c['fitted_on']}"
                     + (f"; maxstat {p_label(c['lau92_p'], 'Lau92 p')}" if c["lau92_p"] is not None else ""))
    lines += [f"note: {n}" for n in summary["notes"]]
    return "\n".join(lines)


def _cohort_for(args):
    """The cohort of ``--cohort``, switched to ``--endpoint`` when given (patients lacking it left out)."""
    from pathviz.cohort import load_cohort

    cohort = load_cohort(args.cohort)
    return cohort.with_endpoint(args.endpoint) if getattr(args, "endpoint", None) else cohort


def cmd_survival_km(args) -> int:
    from pathviz.risk.stratify import comparison_summary, stratify_by_column, stratify_by_risk

    cohort = _cohort_for(args)
    if args.group_by == "risk":
        strat = stratify_by_risk(cohort, cutoff=args.cutoff, evaluate_on=args.evaluate_on, seed=args.seed)
        summary = comparison_summary(strat.comparison, strat.cutoff)
        summary["evaluated_on"] = strat.evaluated_on
        summary["held_out_c_index"] = strat.held_out.to_dict()
        head = (f"{args.cohort}: risk groups (elastic-net Cox), statistics on {strat.evaluated_on} patients\n"
                + _held_out_lines(strat.held_out, "validation"))
    else:
        comp, cut = stratify_by_column(cohort, args.group_by, cutoff=args.cutoff)
        summary = comparison_summary(comp, cut)
        head = f"{args.cohort}: grouped by {args.group_by}"
    head += f" · endpoint: {cohort.endpoint}" + (f" ({cohort.description.split('; ')[-1]})" if args.endpoint else "")
    summary["endpoint"] = cohort.endpoint
    summary["cohort"] = args.cohort
    summary["group_by"] = args.group_by
    _print(args, summary, head + "\n" + _print_comparison(summary))
    return 0


def _held_out_lines(held, what: str) -> str:
    """The held-out C-index line (with the bootstrap settings) and, at chance, the warning."""
    text = f"held-out ({what}) Harrell's C {held.headline()}; {held.method()}"
    return text + (f"\nWARNING: {held.warning}" if held.warning else "")


def cmd_survival_cindex(args) -> int:
    from pathviz.risk.stratify import stratify_by_risk
    from pathviz.survival.chance import HeldOutC

    cohort = _cohort_for(args)
    strat = stratify_by_risk(cohort, seed=args.seed, check_groups=False)  # discrimination only: no strata shown
    m = strat.metrics
    payload = {"cohort": args.cohort, "endpoint": cohort.endpoint, "model": "elastic-net Cox (clinical + expression)", "alpha": strat.model.alpha_,
               "features": strat.model.feature_names_, "selected_features": int((strat.model.coef_ != 0).sum()), **m,
               "auc": {str(k): v for k, v in m["auc"].items()}, "warning": strat.held_out.warning}
    aucs = ", ".join(f"{k:g} mo {v:.3f}" for k, v in m["auc"].items()) or "n/a"
    text = (f"{args.cohort}: elastic-net Cox (split seed {args.seed}), {m['n_validation']} validation patients, "
            f"endpoint {cohort.endpoint}\n"
            + _held_out_lines(strat.held_out, "validation") + "\n"
            f"Uno's C {'n/a' if m['uno_c'] is None else round(m['uno_c'], 3)}; time AUC {aucs}; "
            f"IBS {m['ibs'] if m['ibs'] is None else round(m['ibs'], 4)}; "
            f"CV C on training {m['cv_c_index']:.3f}"
            + (f"\nno-learning baseline (clinical covariates only, same patients): "
               f"{HeldOutC.from_dict(m['clinical_baseline']).headline()}" if m.get("clinical_baseline") else "")
            + (f"\nplanted truth on the same patients: oracle C {m['oracle_c']:.3f}, main-effects oracle "
               f"{m['oracle_main_effects_c']:.3f}" if "oracle_c" in m else "")
            + (f"\nnote: {m['ipcw_note']}" if m.get("ipcw_note") else "")
            + (f"\npatients: {m['omics_note']}" if m.get("omics_note") else ""))
    _print(args, payload, text)
    return 0


def _submit_and_wait(args, kind: str, params: dict):
    """Submit a training job, start a worker when none runs, wait for it (progress on stderr);
    returns the registered version's manifest. Raises PathVizError with the job's error when it
    does not succeed."""
    from pathviz.jobs.queue import JobQueue
    from pathviz.jobs.worker import ensure_worker

    ws = _workspace()
    job = JobQueue(ws.db, ws.home).submit(kind, params, actor=_actor(args))
    ensure_worker(ws.home)
    if not args.json:
        print(f"job {job.id} submitted ({kind}); follow it with `pathviz jobs status {job.id}` or on the admin page",
              file=sys.stderr)
    job = _wait(ws, job.id, quiet=args.json)
    if job.status != "succeeded":
        raise PathVizError(f"Job {job.id} ({kind}) {job.status}: {job.error or job.message}",
                           f"see its log: {job.log_path}" if job.log_path else "")
    return _registry().get(job.result["model"])


def _wait(ws, job_id: int, quiet: bool = False, timeout_s: float | None = None):
    """Poll a job until it finishes (printing progress to stderr); restarts the worker if it died."""
    from pathviz.jobs.queue import JobQueue
    from pathviz.jobs.worker import ensure_worker

    queue, last, t0, checked = JobQueue(ws.db, ws.home), None, time.monotonic(), time.monotonic()
    while True:
        job = queue.get(job_id)
        line = f"[{job.progress * 100:3.0f}%] {job.status}: {job.message}"
        if not quiet and line != last:
            print(line, file=sys.stderr)
            last = line
        if job.finished:
            return job
        if timeout_s is not None and time.monotonic() - t0 > timeout_s:
            raise PathVizError(f"Job {job_id} is still {job.status} after {timeout_s:.0f} s.",
                               f"wait longer, or cancel it: pathviz jobs cancel {job_id}.")
        if job.status == "queued" and time.monotonic() - checked > 5:
            ensure_worker(ws.home, job.device)
            checked = time.monotonic()
        time.sleep(0.3)


def cmd_train_coxpasnet(args) -> int:
    """Thin wrapper: submit a ``coxpasnet`` job, wait, print the new version's held-out figures."""
    from pathviz.survival.chance import HeldOutC

    genesets = args.genesets
    if genesets not in ("kegg", "go_bp"):  # a user's GMT: checked and copied into the workspace, which the job reads
        from pathviz.jobs.coxpasnet import add_user_gmt

        genesets = str(add_user_gmt(_workspace(), None, genesets))
    man = _submit_and_wait(args, "coxpasnet", {"cohort": args.cohort, "genesets": genesets, "seed": args.seed,
                                               "repeats": args.repeats, "min_size": args.min_size,
                                               "max_size": args.max_size, "min_coverage": args.min_coverage,
                                               "endpoint": args.endpoint or "", "missing_omics": args.missing_omics})
    metrics = man.metrics
    held = HeldOutC.from_dict(metrics["held_out"])
    text = (f"Cox-PASNet on {args.cohort} (endpoint {man.params.get('endpoint') or 'primary'}): " + _held_out_lines(held, f"{metrics['n_validation']} validation patients per split")
            + f"\n{metrics['pathways']} pathways, {metrics['genes']} genes; split {metrics['split_seed']}: "
            f"{metrics['train_seconds']:.1f} s on {metrics['device']}"
            + (f" ({metrics['threads']} CPU threads)" if metrics.get("threads") else "")
            + f", inner validation C {metrics['inner_validation_c_index']:.3f}"
            + (f"\npatients: {metrics['omics_note']}" if metrics.get("omics_note") else "")
            + f"\n-> {man.ref}")
    _print(args, {**metrics, "model": man.ref, "warning": held.warning}, text)
    return 0


def cmd_pathways_rank(args) -> int:
    from pathviz.jobs.coxpasnet import rank_model

    folder = Path(args.model)
    if not folder.exists() and "/" in args.model and not args.model.startswith((".", "/")):
        folder = _registry().path(args.model)  # a registry reference KIND/NAME[@VERSION|@ALIAS]
    r = rank_model(_model_folder(str(folder), "pathviz train coxpasnet --cohort NAME"), args.top)
    cols = [c for c in ("rank", "pathway", "description", "importance", "direction", "size", "stability") if c in r["pathways"]]
    held = r["held_out"]
    payload = {"model": str(args.model), "metrics": r["metrics"], "held_out_c_index": held.to_dict() if held else None,
               "warning": held.warning if held else "held-out C-index not recorded: retrain the model",
               "pathways": r["pathways"][cols].to_dict(orient="records"), "genes": r["genes"].to_dict(orient="records")}
    head = (_held_out_lines(held, "validation") if held else
            "WARNING: this model folder predates the held-out C-index record; retrain it before reading its rankings.")
    text = head + "\n" + r["pathways"][cols].to_string(index=False)
    _print(args, payload, text)
    return 0


def _model_folder(path: str, train_command: str, marker: str = "metrics.json") -> Path:
    """A trained model folder, or an error saying how to train one."""
    folder = Path(path)
    if not (folder / marker).exists():
        what = "does not exist" if not folder.exists() else f"holds no trained model ({marker} missing)"
        raise PathVizError(f"Model folder {folder} {what}.", f"train it first: `{train_command}`, or pass the folder it wrote.",
                           folder)
    return folder


def cmd_train_pagenet(args) -> int:
    """Thin wrapper: submit a ``pagenet`` job, wait, print the new version's test figures."""
    from pathviz.survival.chance import HeldOutC

    man = _submit_and_wait(args, "pagenet", {"cohort": args.cohort, "seed": args.seed})
    m = man.metrics
    c = m["test_c_index"]
    held = HeldOutC.from_dict(m["held_out"])
    text = (f"PAGE-Net on {args.cohort} (split seed {args.seed}): " + _held_out_lines(held, f"{m['n']['test']} test patients")
            + f"\ncomparators on the same test patients: Cox-PASNet (genes + age) {c['coxpasnet']:.3f}, image-only Cox-EN "
            f"{c['image_cox_en']:.3f}, clinical Cox (age) {c['clinical']:.3f} ({m['seconds']:.0f} s on {m['device']}) -> {man.ref}")
    _print(args, {**{k: v for k, v in m.items() if k != "map_importance"}, "model": man.ref, "warning": held.warning}, text)
    return 0


def add_weights_file(home: Path, path: str) -> Path:
    """Check a user's encoder weights file (a plain state dict: a pickled object is refused, never
    run) and copy it into ``$PATHVIZ_HOME/weights/`` as ``<sha256[:12]>-<name>`` (training jobs
    read weights only from there). Returns the copy (kept when already there).

    Raises:
        PathVizError: missing, unreadable or unsafe file (:func:`pathviz.nn.encoders.read_weights`).
    """
    import shutil

    from pathviz.jobs.kinds import weights_dir
    from pathviz.nn.encoders import read_weights, sha256_of

    src = Path(path).expanduser()
    read_weights(src)
    dest = weights_dir(home) / f"{sha256_of(src)[:12]}-{src.name}"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".partial")
        shutil.copyfile(src, tmp)
        tmp.replace(dest)
    return dest


def cmd_train_mil(args) -> int:
    """Thin wrapper: submit an ``attention_mil`` or ``crossattn`` job, wait, print the held-out figures."""
    from pathviz.survival.chance import HeldOutC

    kind = "attention_mil" if args.train_command == "mil" else "crossattn"
    weights = str(add_weights_file(_workspace().home, args.weights)) if args.weights else ""
    man = _submit_and_wait(args, kind, {"cohort": args.cohort, "seed": args.seed, "encoder": args.encoder,
                                        "weights": weights, "bag_size": args.bag_size})
    m = man.metrics
    c = m["test_c_index"]
    held = HeldOutC.from_dict(m["held_out"])
    text = (f"{kind} on {args.cohort} (split seed {args.seed}): " + _held_out_lines(held, f"{m['n']['test']} test patients")
            + f"\non the same test patients: {m['comparator']} {c[m['comparator']]:.3f}, clinical only "
            f"({', '.join(m['baseline_clinical']) or 'none'}) {c['clinical']:.3f}; {m['case_level_note']}"
            f"\nencoder: {m['encoder']['notice']}\n({m['seconds']:.0f} s on {m['device']}) -> {man.ref}")
    _print(args, {**m, "model": man.ref, "warning": held.warning}, text)
    return 0


# -- jobs and workers ---------------------------------------------------------------------------
def _parse_params(items: list[str] | None) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise PathVizError(f"--param {item!r} is not key=value.", "write e.g. --param seed=1.")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def cmd_jobs_submit(args) -> int:
    from pathviz.jobs.queue import JobQueue
    from pathviz.jobs.worker import ensure_worker

    ws = _workspace()
    params = _parse_params(args.param)
    if args.cohort:
        params["cohort"] = args.cohort
    job = JobQueue(ws.db, ws.home).submit(args.kind, params, device=args.device, timeout_s=args.timeout,
                                          actor=_actor(args))
    started = False if args.no_worker else ensure_worker(ws.home, args.device)
    _print(args, {"id": job.id, "kind": job.kind, "params": job.params, "status": job.status, "worker_started": started},
           str(job.id))
    return 0


def _queue_args():
    ws = _workspace()
    return ws.db, ws.home


def _job_text(job) -> str:
    secs = job.seconds()
    lines = [f"job {job.id} {job.kind} {job.params}: {job.status} {job.progress:.0%} - {job.message}"
             + (f" ({secs:.0f} s)" if secs is not None else "")]
    if job.result:
        lines.append(f"result: {json.dumps(job.result)}")
    if job.error:
        lines.append(f"error: {job.error}")
    if job.log_path:
        lines.append(f"log: {job.log_path}")
    return "\n".join(lines)


def cmd_jobs_status(args) -> int:
    from pathviz.jobs.queue import JobQueue

    job = JobQueue(*_queue_args()).get(args.id)
    _print(args, job.to_dict(), _job_text(job))
    return 0


def cmd_jobs_list(args) -> int:
    from pathviz.jobs.queue import JobQueue

    jobs = JobQueue(*_queue_args()).list(args.status, args.kind, args.limit)
    _print(args, {"jobs": [j.to_dict() for j in jobs]},
           "\n".join(f"{j.id:>5} {j.kind:<10} {j.status:<11} {j.progress:4.0%} {j.message}" for j in jobs) or "no jobs")
    return 0


def cmd_jobs_wait(args) -> int:
    """Exit 0 when the job succeeded, 1 when it failed, was cancelled or interrupted."""
    ws = _workspace()
    job = _wait(ws, args.id, quiet=args.json, timeout_s=args.timeout)
    _print(args, job.to_dict(), _job_text(job))
    return 0 if job.status == "succeeded" else 1


def cmd_jobs_cancel(args) -> int:
    from pathviz.jobs.queue import JobQueue

    queue = JobQueue(*_queue_args())
    job = queue.cancel(args.id, actor=_actor(args))
    if job.status == "running":  # the worker ends its process tree within a poll
        t0 = time.monotonic()
        while not job.finished and time.monotonic() - t0 < 15:
            time.sleep(0.2)
            job = queue.get(args.id)
    _print(args, job.to_dict(), _job_text(job))
    return 0


def cmd_jobs_kinds(args) -> int:
    from pathviz.jobs.queue import job_kinds

    kinds = job_kinds()
    _print(args, {k: {"title": v.title, "params": v.params, "needs_cohort": v.cohorts is not None} for k, v in kinds.items()},
           "\n".join(f"{k:<14} {v.title}; params: "
                     + (", ".join([*(["cohort"] if v.cohorts else []), *(f"{p}={s.get('default')}" for p, s in v.params.items())])
                        or "none")
                     for k, v in kinds.items()))
    return 0


def cmd_worker(args) -> int:
    from pathviz.jobs.worker import Worker, worker_running

    ws = _workspace()
    if args.quiet_if_running and worker_running(ws.home, args.device):
        return 0
    n = Worker(ws, args.device).run(once=args.once, idle_exit_s=args.idle_exit)
    print(f"worker done: {n} job(s) run", file=sys.stderr)
    return 0


def cmd_heatmap(args) -> int:
    from pathviz.report.render import render_layer_png
    from pathviz.store.registry import chosen_layer_tags

    ws = _workspace()
    ws.db.get_slide(args.slide_id)  # unknown id: closest ids in the error
    base = {"survival-maps": "survival_maps", "survival-score": "survival_score"}.get(args.kind)
    man = _registry().get(args.model) if args.model else None
    if base is not None:  # a model's layer: of the version named, else of the versions the product uses
        tags = {str(man.metrics.get("layer_tag"))} if man else chosen_layer_tags(_registry())
        layer = ws.model_layer(args.slide_id, base, tags).name
    else:
        layer = args.kind
    out = render_layer_png(ws, args.slide_id, layer, args.out, cmap=args.cmap)
    payload, text = {"slide_id": args.slide_id, "layer": layer, "out": str(out)}, f"{layer} of {args.slide_id} -> {out}"
    if base is not None:
        from pathviz.store.workspace import split_model_layer_name
        from pathviz.survival.chance import HeldOutC

        tag = split_model_layer_name(layer)[1]
        man = man or next((m for m in _registry().chosen("pagenet").values() if m.metrics.get("layer_tag") == tag), None)
        if man is not None and "held_out" in man.metrics:
            held = HeldOutC.from_dict(man.metrics["held_out"])
            payload.update(model=man.ref, held_out_c_index=held.to_dict(), warning=held.warning)
            text += f"\nmodel {man.ref}: " + _held_out_lines(held, "test patients")
    _print(args, payload, text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from pathviz.genomics.genesets import MAX_SIZE, MIN_SIZE
    from pathviz.slide.grid import DEFAULT_MIN_TISSUE, DEFAULT_MPP, DEFAULT_PATCH_SIZE
    p = argparse.ArgumentParser(prog="pathviz", description="PathViz computational pathology toolkit.")
    p.add_argument("--user", help="act as this PathViz account (password from PATHVIZ_PASSWORD or a prompt); "
                   "default: the server's operator (os:<login>), who acts as admin")
    sub = p.add_subparsers(dest="command", required=True)

    def with_json(sp):
        sp.add_argument("--json", action="store_true", help="print JSON")
        return sp

    slide = sub.add_parser("slide", help="slide files: info, tiles, add, list, analyse")
    ssub = slide.add_subparsers(dest="slide_command", required=True)
    sp = with_json(ssub.add_parser("info", help="dimensions, levels, mpp, objective, vendor"))
    sp.add_argument("path")
    sp.add_argument("--mpp", type=float, help="declared microns per pixel (required for png/jpg)")
    sp.set_defaults(func=cmd_slide_info)

    sp = with_json(ssub.add_parser("tiles", help="tissue tile grid; prints the number of tissue tiles"))
    sp.add_argument("path")
    sp.add_argument("--mpp", type=float, default=DEFAULT_MPP, help="target microns per pixel of a patch")
    sp.add_argument("--size", type=int, default=DEFAULT_PATCH_SIZE, help="patch side in pixels at --mpp")
    sp.add_argument("--min-tissue", type=float, default=DEFAULT_MIN_TISSUE, help="minimum tissue fraction per tile (0-1)")
    sp.add_argument("--slide-mpp", type=float, help="declared mpp of the slide (png/jpg)")
    sp.add_argument("--out", required=True, help="output .npz (grid) or .csv (table)")
    sp.set_defaults(func=cmd_slide_tiles)

    sp = with_json(ssub.add_parser("add", help="register a slide in the workspace"))
    sp.add_argument("path")
    sp.add_argument("--mpp", type=float, help="declared microns per pixel")
    sp.add_argument("--name")
    sp.add_argument("--copy", action="store_true", help="copy the file into the workspace")
    sp.set_defaults(func=cmd_slide_add)

    sp = with_json(ssub.add_parser("list", help="registered slides"))
    sp.set_defaults(func=cmd_slide_list)

    sp = with_json(ssub.add_parser("analyse", help="tissue mask, tile grid and stain layers of a slide"))
    sp.add_argument("slide_id")
    sp.add_argument("--mpp", type=float, default=DEFAULT_MPP)
    sp.add_argument("--size", type=int, default=DEFAULT_PATCH_SIZE)
    sp.add_argument("--min-tissue", type=float, default=DEFAULT_MIN_TISSUE)
    sp.set_defaults(func=cmd_slide_analyse)

    surv = sub.add_parser("survival", help="Kaplan-Meier, log-rank, hazard ratios, C-index on cohorts")
    vsub = surv.add_subparsers(dest="survival_command", required=True)
    sp = with_json(vsub.add_parser("km", help="KM groups, medians, log-rank p, HR with CI"))
    sp.add_argument("--cohort", required=True)
    sp.add_argument("--group-by", required=True, help="a clinical column, or 'risk'")
    sp.add_argument("--cutoff", default="median", help="median|tertiles|quartiles|optimal|VALUE")
    sp.add_argument("--evaluate-on", default="validation", choices=["validation", "all"])
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--endpoint", help="endpoint key (os, dss, dfs, pfs, pfi...; `pathviz cohort show NAME` lists them); "
                    "default: the cohort's primary endpoint")
    sp.set_defaults(func=cmd_survival_km)
    sp = with_json(vsub.add_parser("cindex", help="discrimination of the elastic-net Cox risk model"))
    sp.add_argument("--cohort", required=True)
    sp.add_argument("--seed", type=int, default=0, help="training/validation split seed")
    sp.add_argument("--endpoint", help="endpoint key (os, dss, dfs, pfs...; default: the cohort's primary endpoint)")
    sp.set_defaults(func=cmd_survival_cindex)

    mod = sub.add_parser("models", help="the model registry: versions, aliases, promote, rollback")
    msub = mod.add_subparsers(dest="models_command", required=True)
    sp = with_json(msub.add_parser("list", help="registered model versions"))
    sp.add_argument("--kind")
    sp.set_defaults(func=cmd_models_list)
    sp = with_json(msub.add_parser("show", help="one version's manifest (KIND/NAME[@VERSION|@ALIAS])"))
    sp.add_argument("ref")
    sp.set_defaults(func=cmd_models_show)
    sp = with_json(msub.add_parser("promote", help="point an alias at a version (KIND/NAME@VERSION)"))
    sp.add_argument("ref")
    sp.add_argument("--alias", default="production")
    sp.set_defaults(func=cmd_models_promote)
    sp = with_json(msub.add_parser("rollback", help="move an alias back to its previous version (KIND/NAME)"))
    sp.add_argument("ref")
    sp.add_argument("--alias", default="production")
    sp.set_defaults(func=cmd_models_rollback)

    coh = sub.add_parser("cohort", help="cohorts: list, show, add (TCGA, cBioPortal, GDC, CSV), remove")
    csub = coh.add_subparsers(dest="cohort_command", required=True)
    sp = with_json(csub.add_parser("list", help="cohort names, patients, events, genes, endpoints"))
    sp.set_defaults(func=cmd_cohort_list)
    sp = with_json(csub.add_parser("show", help="one cohort: patients with/without RNA and slides, fields, endpoints, omics scale"))
    sp.add_argument("name")
    sp.set_defaults(func=cmd_cohort_show)
    sp = with_json(csub.add_parser("add", help="register a cohort folder or CSV so every command and page can load it"))
    sp.add_argument("path")
    sp.add_argument("--format", required=True, choices=("tcga", "cbioportal", "gdc", "csv"))
    sp.add_argument("--name", help="name to load it by (default from the folder or file name)")
    sp.add_argument("--mapping", help="JSON file of format options (CSV: mapping, time_unit, event_map, omics)")
    sp.add_argument("--slides", help="folder of the cohort's slide files, linked to patients by TCGA barcode "
                    "(first 12 characters) or file stem")
    sp.add_argument("--slide-map", help="CSV with columns slide,patient_id linking slide files (in --slides) to patients")
    sp.set_defaults(func=cmd_cohort_add)
    sp = with_json(csub.add_parser("remove", help="forget a registered cohort (its files stay)"))
    sp.add_argument("name")
    sp.set_defaults(func=cmd_cohort_remove)

    train = sub.add_parser("train", help="train models")
    tsub = train.add_subparsers(dest="train_command", required=True)
    sp = with_json(tsub.add_parser("coxpasnet", help="pathway-informed Cox network; prints validation C-index"))
    sp.add_argument("--cohort", required=True)
    sp.add_argument("--genesets", default="kegg", help="kegg, go_bp (shipped) or a GMT file")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--repeats", type=int, default=1, help="repeated splits for ranking stability")
    sp.add_argument("--min-size", type=int, default=MIN_SIZE)
    sp.add_argument("--max-size", type=int, default=MAX_SIZE)
    sp.add_argument("--min-coverage", type=float, default=0.5)
    sp.add_argument("--endpoint", help="endpoint key (os, dss, pfi, dfs...); default: the cohort's primary endpoint; "
                    "another endpoint's model is registered as coxpasnet/<cohort>.<endpoint>")
    sp.add_argument("--missing-omics", choices=("exclude", "impute"), default="exclude",
                    help="patients without expression: left out and counted (default), or imputed with training means")
    sp.set_defaults(func=cmd_train_coxpasnet)

    sp = with_json(tsub.add_parser("pagenet", help="PAGE-Net on the demo cohort; prints test C-index of 3 models"))
    sp.add_argument("--cohort", default="demo")
    sp.add_argument("--seed", type=int, default=0)
    sp.set_defaults(func=cmd_train_pagenet)

    for name, what in (("mil", "gated attention MIL over patch features (attention layers in the viewer)"),
                       ("crossattn", "RNA-to-patch cross-attention, seed 003 (attention for own and median RNA query)")):
        sp = with_json(tsub.add_parser(name, help=what + "; prints the held-out C-index beside its baselines"))
        sp.add_argument("--cohort", default="demo")
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--encoder", default="resnet18", help="resnet18, resnet50, pagenet_cnn or timm:<model>")
        sp.add_argument("--weights", help="local encoder weights (.safetensors or a torch state dict; checked, then "
                        "copied into $PATHVIZ_HOME/weights/); default: random initialisation")
        sp.add_argument("--bag-size", type=int, default=32, help="patches sampled per patient per training step")
        sp.set_defaults(func=cmd_train_mil)

    jobs = sub.add_parser("jobs", help="background jobs: submit, status, wait, cancel, list")
    jsub = jobs.add_subparsers(dest="jobs_command", required=True)
    sp = with_json(jsub.add_parser("submit", help="queue a job (prints its id); starts a worker if none runs"))
    sp.add_argument("kind", help="coxpasnet, pagenet, attention_mil, crossattn or demo (see `pathviz jobs kinds`)")
    sp.add_argument("--cohort")
    sp.add_argument("--param", action="append", metavar="KEY=VALUE", help="a declared parameter (repeatable)")
    sp.add_argument("--device", default="default", help="worker queue (default; e.g. cuda:1)")
    sp.add_argument("--timeout", type=float, default=6 * 3600, help="seconds before the job is stopped")
    sp.add_argument("--no-worker", action="store_true", help="do not start a worker")
    sp.set_defaults(func=cmd_jobs_submit)
    sp = with_json(jsub.add_parser("status", help="one job: status, progress, result or error, log path"))
    sp.add_argument("id", type=int)
    sp.set_defaults(func=cmd_jobs_status)
    sp = with_json(jsub.add_parser("wait", help="wait for a job; exit 0 if it succeeded, 1 otherwise"))
    sp.add_argument("id", type=int)
    sp.add_argument("--timeout", type=float)
    sp.set_defaults(func=cmd_jobs_wait)
    sp = with_json(jsub.add_parser("cancel", help="cancel a job (a running one's processes are stopped)"))
    sp.add_argument("id", type=int)
    sp.set_defaults(func=cmd_jobs_cancel)
    sp = with_json(jsub.add_parser("list", help="recent jobs, newest first"))
    sp.add_argument("--status")
    sp.add_argument("--kind")
    sp.add_argument("--limit", type=int, default=20)
    sp.set_defaults(func=cmd_jobs_list)
    sp = with_json(jsub.add_parser("kinds", help="job kinds and their parameters"))
    sp.set_defaults(func=cmd_jobs_kinds)

    sp = sub.add_parser("worker", help="run queued jobs in this terminal (one at a time per device)")
    sp.add_argument("--once", action="store_true", help="run the next queued job (if any) and exit")
    sp.add_argument("--device", default="default")
    sp.add_argument("--idle-exit", type=float, default=None, help="exit after this many seconds without jobs")
    sp.add_argument("--quiet-if-running", action="store_true", help=argparse.SUPPRESS)
    sp.set_defaults(func=cmd_worker)

    sp = with_json(sub.add_parser("heatmap", help="render a slide's score layer over its thumbnail (PNG)"))
    sp.add_argument("slide_id")
    sp.add_argument("--kind", default="survival-maps", help="survival-maps, survival-score or any layer name")
    sp.add_argument("--model", help="registry version the layer must come from (pagenet/NAME@VERSION; default: the "
                                    "version the viewer uses)")
    sp.add_argument("--cmap", default="inferno")
    sp.add_argument("--out", required=True)
    sp.set_defaults(func=cmd_heatmap)

    pw = sub.add_parser("pathways", help="pathway rankings of a trained model")
    psub = pw.add_subparsers(dest="pathways_command", required=True)
    sp = with_json(psub.add_parser("rank", help="top pathways and genes"))
    sp.add_argument("--model", required=True, help="a registry reference (coxpasnet/NAME[@VERSION]) or a model folder")
    sp.add_argument("--top", type=int, default=20)
    sp.set_defaults(func=cmd_pathways_rank)

    sp = with_json(sub.add_parser("demo", help="build the demo workspace (real slides from pip packages)"))
    sp.add_argument("--cohort-seed", type=int, default=None,
                    help="cohort seed of the demo cohort (default 0, the development seed)")
    sp.add_argument("--patients", type=int, default=None, help="patients of the demo cohort (default "
                    "$PATHVIZ_DEMO_PATIENTS, else 200)")
    sp.set_defaults(func=cmd_demo)

    sp = with_json(sub.add_parser("export-geojson", help="flagged patches + reviews as QuPath GeoJSON"))
    sp.add_argument("slide_id")
    sp.add_argument("--out", required=True)
    sp.add_argument("--layer", default="haematoxylin")
    sp.add_argument("--top-k", type=int, default=20)
    sp.add_argument("--csv", help="also write the table as CSV")
    sp.set_defaults(func=cmd_export_geojson)
    _add_account_commands(sub, with_json)
    from pathviz.store.backup import add_cli as add_backup_commands

    add_backup_commands(sub)
    return p


def _registry():
    return _workspace().registry()


def cmd_models_list(args) -> int:
    """``pathviz models list``: every registered version with its aliases and headline metric."""
    reg = _registry()
    rows = []
    for m in reg.versions(kind=args.kind):
        aliases = [a for a, v in reg.aliases(m.kind, m.name).items() if v == m.version]
        rows.append({"ref": m.ref, "created": m.created, "cohort": m.cohort, "aliases": aliases, "status": m.status,
                     "code_version": m.code_version, "metrics": m.metrics})
    text = "\n".join(f"{r['ref']:<40} {r['created']}  {r['cohort']:<14} {','.join(r['aliases']) or '-'}" for r in rows)
    _print(args, {"versions": rows}, text or "no registered model versions")
    return 0


def cmd_models_show(args) -> int:
    """``pathviz models show KIND/NAME[@VERSION|@ALIAS]``: the manifest (files verified)."""
    reg = _registry()
    man = reg.get(args.ref)
    reg.verify(man)
    payload = {**man.to_dict(), "aliases": reg.aliases(man.kind, man.name),
               "alias_history": reg.alias_history(man.kind, man.name)}
    text = "\n".join([f"{man.ref} ({man.status}), created {man.created} by {man.code_version}",
                      f"cohort {man.cohort or '-'} (data {man.data_digest or '-'}), split seed {man.split_seed}",
                      f"params {json.dumps(man.params)}", f"metrics {json.dumps(man.metrics, default=str)}",
                      f"aliases {json.dumps(payload['aliases'])}", f"{len(man.files)} files verified (SHA-256)"])
    _print(args, payload, text)
    return 0


def cmd_models_promote(args) -> int:
    """``pathviz models promote KIND/NAME@VERSION [--alias A]``."""
    e = _registry().promote(args.ref, alias=args.alias, actor=_actor(args))
    _print(args, e, f"{args.alias}: {e['previous'] or '-'} -> {e['version']}")
    return 0


def cmd_models_rollback(args) -> int:
    """``pathviz models rollback KIND/NAME [--alias A]``."""
    e = _registry().rollback(args.ref, alias=args.alias, actor=_actor(args))
    _print(args, e, f"{args.alias}: {e['previous']} -> {e['version']} (rolled back)")
    return 0


def _cohort_registry():
    from pathviz.cohort.registry import CohortRegistry

    ws = _workspace()
    return CohortRegistry(ws.db, ws.audit)


def cmd_cohort_add(args) -> int:
    """``pathviz cohort add PATH --format tcga|cbioportal|gdc|csv [--name N] [--mapping FILE] [--slides DIR [--slide-map FILE]]``."""
    options = {}
    if args.mapping:
        try:
            options = json.loads(Path(args.mapping).read_text())
        except (OSError, ValueError) as exc:
            raise PathVizError(f"Cannot read the mapping file {args.mapping} ({exc}).",
                               'write JSON such as {"mapping": {"patient_id": "id", "time": "os_days", "event": "dead"}, '
                               '"time_unit": "days"}.', args.mapping) from exc
    options.update({k: v for k, v in (("slides", args.slides), ("slide_map", args.slide_map)) if v})
    cohort = _cohort_registry().add(_actor(args), args.path, args.format, name=args.name, options=options)
    s = cohort.summary()
    _print(args, s, f"added cohort {cohort.name}: {cohort.n} patients, {cohort.n_events} events"
           + (f"; expression {cohort.omics.shape[1]} genes ({cohort.omics_scale}) for "
              f"{int(cohort.clinical.index.astype(str).isin(cohort.omics.index.astype(str)).sum())} patients"
              if cohort.omics is not None else "; no expression")
           + (f"\n{cohort.slide_links.note(cohort.n)}" if cohort.slide_links is not None else "")
           + f"\nuse it: pathviz survival cindex --cohort {cohort.name}")
    return 0


def cmd_cohort_remove(args) -> int:
    """``pathviz cohort remove NAME``: forget the registration (files stay)."""
    _cohort_registry().remove(_actor(args), args.name)
    _print(args, {"removed": args.name}, f"removed cohort {args.name} (its files are untouched)")
    return 0


def cmd_cohort_show(args) -> int:
    """``pathviz cohort show NAME``: coverage of each modality and field, endpoints, omics scale."""
    from pathviz.cohort import load_cohort
    from pathviz.cohort.slides import coverage

    c = load_cohort(args.name)
    ws = _workspace()
    cov = coverage(c, [r.name for r in ws.slides()])
    payload = {**c.summary(), **cov}
    lines = [f"{c.name}: {c.n} patients, {c.n_events} events ({c.endpoint}); {c.description}",
             f"RNA: {cov['with_rna']} with, {cov['without_rna']} without"
             + (f" ({c.omics.shape[1]} genes, scale {c.omics_scale or 'unknown'})" if c.omics is not None else ""),
             f"slides: {cov['with_slides']} patients with a linked slide file, {cov['without_slides']} without; "
             f"{cov['with_rna_and_slides']} with RNA and a slide; {cov['workspace_slides']} with a slide registered "
             "in this workspace",
             "endpoints: " + ", ".join(f"{e['key']} ({e['label']}, {e['patients']} patients)" for e in cov["endpoints"]),
             "fields (patients with a value / missing, kind):"]
    lines += [f"  {f['field']:<28}{f['present']:>6} /{f['missing']:>5}  {f['kind']}" for f in cov["fields"]]
    if c.omics_note:
        lines.append(f"omics: {c.omics_note}")
    _print(args, payload, "\n".join(lines))
    return 0


def cmd_cohort_list(args) -> int:
    """``pathviz cohort list``: the cohorts available here, with size, genes, slides and endpoints."""
    from pathviz.cohort import available_cohorts, load_cohort

    registered = {r.name: r.format for r in _cohort_registry().records()}
    rows, broken = [], []
    for name in available_cohorts():
        try:
            c = load_cohort(name)
        except PathVizError as exc:  # a registered cohort whose files changed: listed with its error
            broken.append({"name": name, "source": registered.get(name, "built-in"), "error": str(exc)})
            continue
        rows.append({"name": name, "source": f"registered ({registered[name]})" if name in registered else "built-in",
                     "patients": c.n, "events": c.n_events, "genes": 0 if c.omics is None else int(c.omics.shape[1]),
                     "omics_scale": getattr(c, "omics_scale", ""),
                     "slides": "slide" in c.clinical.columns, "endpoints": [e.label for e in c.endpoints],
                     "markers": c.markers, "semi_synthetic": c.semi_synthetic})
    text = "\n".join(f"{r['name']:<16}{r['patients']:>6} patients{r['events']:>6} events{r['genes']:>7} genes"
                      f"{'  slides' if r['slides'] else ''}  endpoints: {', '.join(r['endpoints'])}  [{r['source']}]"
                      for r in rows)
    text += "".join(f"\n{b['name']:<16} cannot be loaded [{b['source']}]: {b['error']}" for b in broken)
    _print(args, {"cohorts": rows, "unloadable": broken}, text)
    return 0


# -- users and the audit log ----------------------------------------------------------------------
def _new_password(args, name: str) -> tuple[str, bool]:
    """``--password-env VAR`` names a variable holding the password; else a random one-time
    password is made and printed once (returns it and whether it was generated)."""
    import os
    import secrets

    if getattr(args, "password_env", None):
        value = os.environ.get(args.password_env)
        if not value:
            raise PathVizError(f"{args.password_env} is not set.", f"export {args.password_env}=... first, or omit "
                               "--password-env to get a random one-time password.")
        return value, False
    return secrets.token_urlsafe(12), True


def _user_line(u) -> str:
    state = "active" if u.active else "disabled"
    if u.locked_until is not None and u.locked_until > __import__("datetime").datetime.now(u.locked_until.tzinfo):
        state += f", locked until {u.locked_until:%H:%M} UTC"
    if u.must_change_password:
        state += ", must change password"
    return f"{u.username:<20} {','.join(u.roles):<40} {state}"


def _user_dict(u) -> dict:
    return {"username": u.username, "display_name": u.display_name, "roles": list(u.roles), "active": u.active,
            "must_change_password": u.must_change_password,
            "locked_until": u.locked_until.isoformat() if u.locked_until else None}


def cmd_users_list(args) -> int:
    """``pathviz users list``: accounts, roles and state (admins / the operator)."""
    users = _workspace().accounts.users(_actor(args))
    _print(args, {"users": [_user_dict(u) for u in users]}, "\n".join(_user_line(u) for u in users) or "no users")
    return 0


def cmd_users_add(args) -> int:
    """``pathviz users add NAME --roles pathologist[,..]``: a new account with a one-time password."""
    password, generated = _new_password(args, args.username)
    u = _workspace().accounts.create_user(_actor(args), args.username, password, args.roles, args.display_name or "",
                                          must_change_password=True)
    text = f"created {u.username} ({','.join(u.roles)})"
    if generated:
        text += f"; one-time password: {password} (give it to the user; it must be changed at first login)"
    _print(args, {**_user_dict(u), **({"one_time_password": password} if generated else {})}, text)
    return 0


def cmd_users_roles(args) -> int:
    """``pathviz users roles NAME ROLE[,ROLE]``: replace a user's roles."""
    u = _workspace().accounts.set_roles(_actor(args), args.username, args.roles)
    _print(args, _user_dict(u), _user_line(u))
    return 0


def cmd_users_active(args) -> int:
    """``pathviz users disable|enable NAME``."""
    u = _workspace().accounts.set_active(_actor(args), args.username, args.users_command == "enable")
    _print(args, _user_dict(u), _user_line(u))
    return 0


def cmd_users_reset(args) -> int:
    """``pathviz users reset-password NAME``: a new one-time password; ends the user's sessions and lockout."""
    password, generated = _new_password(args, args.username)
    u = _workspace().accounts.reset_password(_actor(args), args.username, password)
    _print(args, {**_user_dict(u), **({"one_time_password": password} if generated else {})},
           f"{u.username}: password reset" + (f"; one-time password: {password}" if generated else ""))
    return 0


def cmd_audit_verify(args) -> int:
    """``pathviz audit verify``: recompute the hash chain; exit 1 when it is broken."""
    rep = _workspace().audit.verify()
    payload = {"ok": rep.ok, "rows": rep.rows, "head_hash": rep.head_hash, "first_bad_id": rep.first_bad_id,
               "reason": rep.reason}
    if rep.ok:
        text = (f"audit log intact: {rep.rows} rows, head hash {rep.head_hash} (keep this hash elsewhere to detect a "
                "later removal of the newest rows)")
    else:
        text = f"audit log BROKEN at row {rep.first_bad_id}: {rep.reason}; {rep.rows} rows before it verify"
    _print(args, payload, text)
    return 0 if rep.ok else 1


def _audit_rows(args) -> list[dict]:
    from datetime import datetime, timezone

    def when(v):
        return datetime.fromisoformat(v).replace(tzinfo=timezone.utc) if v else None

    return _workspace().audit.search(_actor(args), username=args.username or "", action=args.action or "",
                                     text=args.text or "", since=when(args.since), until=when(args.until), limit=args.limit)


def cmd_audit_list(args) -> int:
    """``pathviz audit list [--user-name U] [--action A] [--text T] [--since ISO] [--until ISO]``."""
    rows = _audit_rows(args)
    _print(args, {"rows": rows}, "\n".join(f"{r['id']:>6} {r['at'][:19]} {r['username']:<16} {r['action']:<22} "
                                           f"{r['object_type']}:{r['object_id']} {r['details']}" for r in rows) or "no rows")
    return 0


def cmd_audit_export(args) -> int:
    """``pathviz audit export --out FILE.csv [filters]``: matching rows as CSV (formula-safe)."""
    from pathviz.auth.audit import rows_csv

    rows = _audit_rows(args)
    out = Path(args.out)
    out.write_text(rows_csv(rows))
    _workspace().audit.record(_actor(args), "audit.exported", "audit_log", "", {"rows": len(rows)})
    _print(args, {"rows": len(rows), "out": str(out)}, f"{len(rows)} rows -> {out}")
    return 0


def _add_account_commands(sub, with_json) -> None:
    from pathviz.auth.policy import ROLES

    users = sub.add_parser("users", help="accounts: list, add, roles, disable, enable, reset-password")
    usub = users.add_subparsers(dest="users_command", required=True)
    sp = with_json(usub.add_parser("list", help="accounts with roles and state"))
    sp.set_defaults(func=cmd_users_list)
    sp = with_json(usub.add_parser("add", help="create an account with a one-time password"))
    sp.add_argument("username")
    sp.add_argument("--roles", required=True, help=f"comma-separated: {', '.join(ROLES)}")
    sp.add_argument("--display-name", default="")
    sp.add_argument("--password-env", help="name of an environment variable holding the initial password "
                    "(default: a random one-time password, printed once)")
    sp.set_defaults(func=cmd_users_add)
    sp = with_json(usub.add_parser("roles", help="replace a user's roles"))
    sp.add_argument("username")
    sp.add_argument("roles", help=f"comma-separated: {', '.join(ROLES)}")
    sp.set_defaults(func=cmd_users_roles)
    for what in ("disable", "enable"):
        sp = with_json(usub.add_parser(what, help=f"{what} an account" + (" (ends its sessions)" if what == "disable" else "")))
        sp.add_argument("username")
        sp.set_defaults(func=cmd_users_active)
    sp = with_json(usub.add_parser("reset-password", help="new one-time password; ends sessions, clears a lockout"))
    sp.add_argument("username")
    sp.add_argument("--password-env")
    sp.set_defaults(func=cmd_users_reset)

    audit = sub.add_parser("audit", help="the audit log: verify, list, export")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    sp = with_json(asub.add_parser("verify", help="check the hash chain (exit 1 when broken)"))
    sp.set_defaults(func=cmd_audit_verify)
    for what, fn in (("list", cmd_audit_list), ("export", cmd_audit_export)):
        sp = with_json(asub.add_parser(what, help="rows, newest first" if what == "list" else "rows as CSV"))
        sp.add_argument("--user-name", dest="username", help="exact username")
        sp.add_argument("--action", help="action prefix, e.g. login or review")
        sp.add_argument("--text", help="text in the object or details")
        sp.add_argument("--since", help="UTC ISO time, e.g. 2026-11-01T00:00")
        sp.add_argument("--until", help="UTC ISO time")
        sp.add_argument("--limit", type=int, default=500)
        if what == "export":
            sp.add_argument("--out", required=True)
        sp.set_defaults(func=fn)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input: ``error: <what> Fix: <how>`` on stderr)."""
    global _ACTOR
    args = build_parser().parse_args(argv)
    _ACTOR = None
    try:
        return args.func(args)
    except PathVizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of our output went away (e.g. `| head`): not an error of the command
        sys.stderr.close()
        return 0
    except OSError as exc:  # a file the command needed (not one PathViz validated): name it, never a traceback
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"error: {exc.strerror or exc}{where}. Fix: check that the path exists and is readable, "
              "and that the disk has space.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
