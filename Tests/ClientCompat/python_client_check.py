"""Drives hubd with the official Durable Streams Python client (PyPI `durable-streams`), unchanged.

Usage: python_client_check.py BASE_URL   (e.g. http://127.0.0.1:4437)
Exits 0 when every check passed; prints the failing check and exits 1 otherwise.
"""
import sys
import threading
import uuid

from durable_streams import DurableStream, stream


def main(base: str) -> None:
    url = f"{base}/v1/stream/pyclient-{uuid.uuid4().hex[:12]}"

    handle = DurableStream.create(url, content_type="application/json", ttl_seconds=3600)
    handle.append({"n": 1})
    handle.append({"n": 2})
    handle.append({"n": 3})
    meta = handle.head()
    assert meta.content_type == "application/json", meta
    assert meta.offset == "00000000000000000003", meta

    with stream(url, live=False) as res:
        items = res.read_json()
    assert items == [{"n": 1}, {"n": 2}, {"n": 3}], items

    # Resume from an offset the server handed out.
    with stream(url, offset="00000000000000000001", live=False) as res:
        assert res.read_json() == [{"n": 2}, {"n": 3}]

    # Live tails: long-poll and SSE each see an append made after they attached.
    for mode in ("long-poll", "sse"):
        seen = []
        attached = threading.Event()

        def tail() -> None:
            with stream(url, offset="00000000000000000003", live=mode) as res:
                attached.set()
                for item in res.iter_json():
                    seen.append(item)
                    if item.get("mode") == mode:
                        return

        t = threading.Thread(target=tail, daemon=True)
        t.start()
        attached.wait(10)
        handle.append({"mode": mode})
        t.join(20)
        assert not t.is_alive(), f"{mode} tail did not receive the append"
        assert seen[-1] == {"mode": mode}, (mode, seen)

    text_url = f"{base}/v1/stream/pyclient-text-{uuid.uuid4().hex[:12]}"
    text = DurableStream.create(text_url, content_type="text/plain")
    text.append("hello ")
    text.append("world")
    with text.stream(live=False) as res:
        assert res.read_text() == "hello world"
    text.delete()
    try:
        with stream(text_url, live=False) as res:
            res.read_text()
        raise AssertionError("reading a deleted stream succeeded")
    except AssertionError:
        raise
    except Exception:
        pass
    print("python client: all checks passed")


if __name__ == "__main__":
    try:
        main(sys.argv[1].rstrip("/"))
    except AssertionError as failure:
        print(f"python client check failed: {failure!r}", file=sys.stderr)
        sys.exit(1)
