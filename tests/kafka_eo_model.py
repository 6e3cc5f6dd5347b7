#!/usr/bin/env python3
"""kafka_eo_model.py - the message sequence and final model used by
tests/kafka_exactly_once.sh.

  kafka_eo_model.py produce BOOTSTRAP TOPIC N PARTS SECONDS
      produce messages 0..N-1 with kcat, message j to partition j % PARTS,
      paced over about SECONDS; exits non-zero when a kcat fails.
  kafka_eo_model.py check URL COLLECTION N PARTS
      compare the collection (scrolled over REST) with the model; prints
      the differences, exits 1 when there are any.
  kafka_eo_model.py snapshot URL COLLECTION PARTS
      print, per partition, the lowest offset a restart may resume at: one
      past the offset of the newest message the server visibly holds.

Message j names point id j % 500; 500 is a multiple of PARTS, so every
point lives in one partition and message j is at offset j // PARTS of
partition j % PARTS (the topic starts empty).  Kinds, chosen from j and
the model so that every message applies: tombstones (key {"id",
"collection_name"}), delete envelopes, set_payload envelopes (payload
{"s": j}, only on a point that exists) and sink-connector upserts (payload
{"i": j}).  A point's stamp is max(i, s): the newest message it reflects.
"""
import json
import subprocess
import sys
import time
import urllib.request

IDS = 500


def messages(n):
    """[(j, key or '', value or None)], and the final model id -> payload."""
    model = {}
    out = []
    for j in range(n):
        pid = j % IDS
        if j % 17 == 5:
            out.append((j, json.dumps({"id": pid, "collection_name": "c"}), None))
            model.pop(pid, None)
        elif j % 29 == 3 and pid in model:
            out.append((j, "", json.dumps({"collection_name": "c", "op": "delete",
                                            "points": [pid]})))
            model.pop(pid, None)
        elif j % 13 == 7 and pid in model:
            out.append((j, "", json.dumps({"collection_name": "c", "op": "set_payload",
                                            "payload": {"s": j}, "points": [pid]})))
            model[pid] = dict(model[pid], s=j)
        else:
            out.append((j, "", json.dumps({"collection_name": "c", "id": pid,
                                            "vector": [j % 7, 1], "payload": {"i": j}})))
            model[pid] = {"i": j}
    return out, model


def produce(bs, topic, n, parts, seconds):
    msgs, _ = messages(n)
    procs = [subprocess.Popen(["kcat", "-P", "-b", bs, "-t", topic, "-p", str(p), "-K", "|",
                               "-Z", "-X", "linger.ms=5"], stdin=subprocess.PIPE, text=True)
             for p in range(parts)]
    step = 20
    pause = seconds / (n / step)
    for j, key, value in msgs:
        procs[j % parts].stdin.write("%s|%s\n" % (key, value if value is not None else ""))
        if j % step == step - 1:
            for p in procs:
                p.stdin.flush()
            time.sleep(pause)
    rc = 0
    for p in procs:
        p.stdin.close()
        rc |= p.wait()
    return rc


def scroll(url, coll):
    pts = {}
    offset = None
    while True:
        body = {"limit": 1000, "with_payload": True, "with_vector": False}
        if offset is not None:
            body["offset"] = offset
        req = urllib.request.Request("%s/collections/%s/points/scroll" % (url, coll),
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            res = json.load(r)["result"]
        for p in res["points"]:
            pts[p["id"]] = p["payload"]
        offset = res.get("next_page_offset")
        if offset is None:
            return pts


def check(url, coll, n, parts):
    _, model = messages(n)
    try:
        got = scroll(url, coll)
    except Exception as e:  # noqa: BLE001 - report any failure to read
        print("scroll failed: %s" % e)
        return 1
    bad = []
    for pid in sorted(set(model) | set(got)):
        if model.get(pid) != got.get(pid):
            bad.append("point %d: got %s, want %s" % (pid, got.get(pid, "absent"),
                                                       model.get(pid, "absent")))
    for line in bad[:10]:
        print(line)
    if bad:
        print("%d of %d points differ (model %d points, server %d)"
              % (len(bad), len(set(model) | set(got)), len(model), len(got)))
    return 1 if bad else 0


def snapshot(url, coll, parts):
    got = scroll(url, coll)
    mins = [0] * parts
    for pid, pl in got.items():
        stamp = max(pl.get("i", -1), pl.get("s", -1))
        p = stamp % parts
        mins[p] = max(mins[p], stamp // parts + 1)
    print(" ".join(str(m) for m in mins))
    return 0


def main(argv):
    cmd = argv[1]
    if cmd == "produce":
        return produce(argv[2], argv[3], int(argv[4]), int(argv[5]), float(argv[6]))
    if cmd == "check":
        return check(argv[2], argv[3], int(argv[4]), int(argv[5]))
    if cmd == "snapshot":
        return snapshot(argv[2], argv[3], int(argv[4]))
    print("unknown command %s" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
