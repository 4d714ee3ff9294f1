"""Where a rebalance hands the input partitions back to the agent.

faust-streaming's recovery, once the tables are restored, resumes the input partitions, seeks
them to their committed offsets and then clears every stream's queue (``flow_control.resume``),
while its fetcher keeps delivering: the records delivered during the seek are cleared unread,
never acked and never fetched again, so that partition's commit stops at the first of them for
good (faust-streaming#596); records fetched before the seek and delivered after it open a gap
that Faust counts as acked. Stopping the consumer's flow first delivers nothing until the seek
and the clear are done; recovery resumes the flow right after them.
"""

from __future__ import annotations

from typing import Any


def seek_before_delivering(app: Any) -> None:
    """Stop ``app``'s consumer flow when recovery completes (``on_rebalance_complete``, sent
    before the input partitions are resumed and sought)."""

    async def stop_delivering(sender: Any, **kwargs: Any) -> None:
        app.consumer.stop_flow()

    app.on_rebalance_complete.connect(stop_delivering)
