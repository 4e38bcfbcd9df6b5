"""The table of bench/run: one row per figure, a column per relay, ratios.

Used by bench/run (and by `bench/run --table results.json` to print a past run again).
"""
import statistics

# camrelay-noburst: camrelay with instant_start = false (no catch-up burst at join).
RELAYS = ["camrelay", "camrelay-noburst", "baseline"]


def fmt(v, digits=1):
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}f}"


def ratio(a, b):
    """a/b of two positive figures (a signed difference of times has no ratio)."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a >= 0 and b > 0:
        return f"{a / b:.2f}"
    return "—"


def med(values):
    return statistics.median(values) if values else None


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q * len(v) + 0.5)) - 1))]


def recovery_rows(row):
    """The rows of one reboot or stall result; row(label, fn, show_ratio=True)."""
    row("sessions kept", lambda v: f"{v['kept']}/{v['clients']}", False)
    row("clients with live video again", lambda v: f"{v['with_video']}/{v['clients']}", False)
    row("camera back → live video ms p50", lambda v: med(v["video_ms"]))
    row("camera back → live video ms max", lambda v: max(v["video_ms"]) if v["video_ms"] else None)
    row("camera back → first frame ms p50", lambda v: med(v["first_frame_ms"]))
    row("longest time without a packet ms, max over kept sessions",
        lambda v: max(v["packet_gap_ms"]) if v.get("packet_gap_ms") else None)
    row("longest time without a packet ms, p50 over kept sessions",
        lambda v: med(v.get("packet_gap_ms")))
    row("camera back → direct client's first keyframe ms", lambda v: v.get("direct_keyframe_ms"),
        False)
    row("camera's first keyframe (direct client) → live video ms p50",
        lambda v: med(v.get("after_camera_keyframe_ms")))
    row("camera's first keyframe (direct client) → live video ms max",
        lambda v: max(v["after_camera_keyframe_ms"]) if v.get("after_camera_keyframe_ms") else None)


def rows_for(name, results):
    """[(figure, {relay: value}, show_ratio)] for one scenario."""
    get = {relay: results.get(relay, {}).get(name) for relay in RELAYS}
    rows = []

    def row(label, fn, show_ratio=True, digits=1):
        rows.append((label, {r: (fn(v) if v else None) for r, v in get.items()}, show_ratio,
                     digits))

    if name == "ramp":
        levels = []
        for v in get.values():
            if v:
                levels += [lv["clients"] for lv in v["levels"] if lv["clients"] not in levels]

        def lv(n, key):
            return lambda v: next((x[key] for x in v["levels"] if x["clients"] == n), None)

        def per(n, key, scale=1.0):
            def f(v):
                x = next((x for x in v["levels"] if x["clients"] == n), None)
                return None if x is None or x[key] is None else x[key] * scale / n
            return f

        def played(n):
            def f(v):
                x = next((x for x in v["levels"] if x["clients"] == n), None)
                return None if x is None else (f"{x['connected']}/{n}"
                                               + (f", {x['disconnected']} cut" if x["disconnected"] else ""))
            return f

        for n in levels:
            row(f"ramp {n}: clients playing", played(n), False)
            row(f"ramp {n}: fps per client min", lv(n, "fps_min"))
            row(f"ramp {n}: fps per client median", lv(n, "fps_median"))
            row(f"ramp {n}: RTP loss %", lv(n, "loss_percent"), False)
            row(f"ramp {n}: relay CPU % of one core", lv(n, "cpu"))
            row(f"ramp {n}: CPU % per client (lower is better)", per(n, "cpu"), True, 3)

            def per_frames(v, n=n):
                x = next((x for x in v["levels"] if x["clients"] == n), None)
                if x is None or x["cpu"] is None or not x["fps_median"]:
                    return None
                return x["cpu"] * 1000 / (n * x["fps_median"])
            row(f"ramp {n}: CPU % per 1000 frames/s delivered (lower is better)", per_frames,
                True, 3)
            row(f"ramp {n}: RSS MiB", lv(n, "rss_mb"))
            row(f"ramp {n}: RSS KiB per client (lower is better)", per(n, "rss_mb", 1024))
            row(f"ramp {n}: threads", lv(n, "threads"))
            row(f"ramp {n}: fds", lv(n, "fds"))
            row(f"ramp {n}: rtspload CPU % of one core", lv(n, "load_cpu"), False)
        row("largest level with no loss, all playing, median fps ≥ 29", lambda v: v["largest_ok"])
    elif name == "join":
        keys = []
        for v in get.values():
            if v and "ms" not in v:   # (a past run's results.json has "ms" only)
                keys += [k for k in v if k not in keys]
        for k in keys:
            def at(fn, k=k):
                return lambda v: fn(v[k]) if k in v else None
            gop, transport = k.split("-")
            g = f"join GOP {gop} s {transport.upper()}"
            row(f"{g}: PLAY → first decodable keyframe ms p50", at(lambda x: med(x["decodable_ms"])))
            row(f"{g}: PLAY → first decodable keyframe ms p95",
                at(lambda x: pct(x["decodable_ms"], 0.95)))
            row(f"{g}: PLAY → first decodable keyframe ms max",
                at(lambda x: max(x["decodable_ms"]) if x["decodable_ms"] else None))
            row(f"{g}: PLAY → live (burst over) ms p50", at(lambda x: med(x["live_ms"])))
            row(f"{g}: PLAY → live (burst over) ms p95", at(lambda x: pct(x["live_ms"], 0.95)))
            row(f"{g}: joins with a decodable keyframe",
                at(lambda x: f"{len(x['decodable_ms'])}/{x['joins']}"), False)
            row(f"{g}: RTP packets lost, all joins", at(lambda x: x["lost"]), False)
    elif name == "storm":
        row("storm: clients joining within 1 s (GOP)", lambda v: f"{v['clients']} (GOP {v['gop']:g} s)",
            False)
        row("storm: clients with a decodable keyframe",
            lambda v: f"{len(v['decodable_ms'])}/{v['clients']}", False)
        row("storm: PLAY → first decodable keyframe ms p50", lambda v: med(v["decodable_ms"]))
        row("storm: PLAY → first decodable keyframe ms p95", lambda v: pct(v["decodable_ms"], 0.95))
        row("storm: PLAY → live (burst over) ms p95", lambda v: pct(v["live_ms"], 0.95))
        row("storm: RTP packets lost", lambda v: v["lost"], False)
        row("storm: relay CPU % of one core over the storm run (joins, then GOP + 4 s)",
            lambda v: v["cpu"])
        row("storm: relay RSS MiB after the storm", lambda v: v["rss_mb"])
    elif name in ("reboot", "stall"):
        # stall: one result per stall length ({"3": {...}, "15": {...}}); reboot: one result.
        if name == "stall":
            lengths = []
            for v in get.values():
                if v and "clients" not in v:
                    lengths += [k for k in v if k not in lengths]
            parts = [(f"stall {k} s", k) for k in sorted(lengths, key=float)]
            if any(v and "clients" in v for v in get.values()):
                parts = [("stall", None)]   # a past run's results.json, one stall
        else:
            parts = [("reboot", None)]
        for prefix, k in parts:
            def row_of(label, fn, show_ratio=True, k=k):
                row(f"{prefix}: {label}",
                    (lambda v: fn(v[k]) if k in v else None) if k else fn, show_ratio)
            recovery_rows(row_of)
    elif name == "reader":
        row("reader: the other clients", lambda v: v["others"], False)
        row("reader: others' fps min", lambda v: v["fps_min"])
        row("reader: others' fps median", lambda v: v["fps_median"])
        row("reader: others' RTP loss %", lambda v: v["loss_percent"], False)
        row("reader: others' longest frame gap ms", lambda v: v["gap_max"])
        row("reader: stalled client still playing at end", lambda v: v["stalled_connected_at_end"],
            False)
        row("reader: stalled client frames after the stall", lambda v: v["stalled_frames_after"],
            False)
    elif name == "churn":
        for key, label in (("fds", "fds"), ("threads", "threads"), ("rss_mb", "RSS MiB")):
            row(f"churn: {label} idle before → under churn early → late → idle after",
                lambda v, k=key: " → ".join(fmt(v[w][k]) for w in ("start", "early", "late", "end")),
                False)
            row(f"churn: {label} growth, idle after − idle before", lambda v, k=key: (
                None if v["end"][k] is None or v["start"][k] is None
                else v["end"][k] - v["start"][k]), False)
        row("churn: sessions played / attempts", lambda v: f"{v['sessions']}/{v['attempts']}", False)
    elif name == "latency":
        row("latency: added by the relay, steady, ms median (keyframe arrival, relay − direct)",
            lambda v: med(v["steady_ms"]))
        row("latency: added, steady, ms min..max", lambda v: (
            f"{min(v['steady_ms']):.1f}..{max(v['steady_ms']):.1f}" if v["steady_ms"] else None),
            False)
        row("latency: added after a 2 s camera gap, ms median (live video, relay − direct)",
            lambda v: med(v["gap_ms"]))
        row("latency: camera resumes → video at the direct client ms median",
            lambda v: med(v["gap_direct_ms"]))
        row("latency: rounds measured (steady, gap)",
            lambda v: f"{len(v['steady_ms'])}/{v['rounds']}, {len(v['gap_ms'])}/{v['gap_rounds']}", False)
    return rows


def print_table(bench, results, scenarios, header):
    relays = [r for r in RELAYS if r in results]
    pairs = [(a, b) for a, b in (("camrelay", "baseline"), ("camrelay", "camrelay-noburst"))
             if a in relays and b in relays]
    lines = header + ["", "| Figure | " + " | ".join(relays) + "".join(
        f" | {a}/{b}" for a, b in pairs) + " |", "|---|" + "---:|" * (len(relays) + len(pairs))]
    for name in scenarios:
        for label, values, show, digits in rows_for(name, results):
            cells = [fmt(values[r], digits) for r in relays]
            cells += [ratio(values[a], values[b]) if show else "—" for a, b in pairs]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text, flush=True)
    return text
