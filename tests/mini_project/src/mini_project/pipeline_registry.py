from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from mini_project import nodes


def register_pipelines() -> dict[str, Pipeline]:
    scoring = pipeline(
        [
            node(nodes.enrich, ["batch", "lookup", "params:factor"], "enriched", name="enrich"),
            node(nodes.predict, ["enriched", "model"], "predictions", name="predict"),
            node(nodes.summarize, ["predictions", "params:threshold"], "summary", name="summarize"),
            node(nodes.fail_on_negative, "predictions", "checked", name="check"),
        ],
        namespace="ns",
        inputs={"lookup"},
    )
    templated = pipeline(
        [
            node(nodes.apply_rate, ["orders", "rates"], "converted", name="apply_rate"),
            node(nodes.total, "converted", "report", name="total"),
        ],
        namespace="tpl",
    )
    plain = pipeline([node(nodes.total, "converted_plain", "report_plain", name="plain_total")])
    slow = pipeline(
        [
            node(
                nodes.slow_echo,
                ["batch", "params:seconds", "params:gate"],
                "echoed",
                name="slow_echo",
            )
        ],
        namespace="slow",
    )
    wrong = pipeline(
        [node(nodes.not_a_table, "batch", "count", name="not_a_table")], namespace="wrong"
    )
    # Per-key state: each account's running tally, kept between micro-batches.
    tally = pipeline(
        [node(nodes.tally, ["events", "activity"], ["features", "activity_updates"], name="tally")],
        namespace="tally",
        inputs={"events"},
    )
    tally_bad = pipeline(
        [
            node(
                nodes.tally_elsewhere,
                ["events", "activity"],
                ["features", "activity_updates"],
                name="tally_elsewhere",
            )
        ],
        namespace="tally",
        inputs={"events"},
    )
    return {
        "__default__": scoring + templated + plain,
        "tally": tally,
        "tally_bad": tally_bad,
        "scoring": scoring,
        "slow": slow,
        "wrong": wrong,
    }
