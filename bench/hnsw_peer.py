#!/usr/bin/python3
"""Peer side of the HNSW benchmark: hnswlib and faiss on the files that
`hnsw_bench gen` wrote (see bench/hnsw_bench.c for the formats).

    /usr/bin/python3 bench/hnsw_peer.py DIR THREADS EF...

Prints one JSON object per line, the same keys as hnsw_bench run.  Both
libraries use M 16, ef_construction 100, L2.  Searches run single-threaded
through each library's batch call (the loop over queries is in C++, so no
per-query Python overhead is measured).  Memory per point is the growth of
the process's resident set over the build (hnswlib allocates max_elements
up front, which is n here).
"""
import json
import os
import sys
import tempfile
import time

import numpy as np

K = 10
M = 16
EF_CONSTRUCT = 100
FILTERS = (1, 10, 50)


def read_fbin(path):
    hdr = np.fromfile(path, dtype=np.uint32, count=2)
    return np.fromfile(path, dtype=np.float32, offset=8).reshape(int(hdr[0]), int(hdr[1]))


def read_ibin(path):
    hdr = np.fromfile(path, dtype=np.uint32, count=2)
    return np.fromfile(path, dtype=np.uint32, offset=8).reshape(int(hdr[0]), int(hdr[1]))


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def recall(got, gt):
    hits = total = 0
    for g, w in zip(got, gt):
        w = [x for x in w if x != 0xFFFFFFFF]
        total += len(w)
        hits += len(set(int(x) for x in g if x >= 0) & set(int(x) for x in w))
    return hits / total if total else 1.0


def emit(**kw):
    print(json.dumps(kw), flush=True)


def timed_queries(fn):
    """Run fn (all queries) until at least 0.3 s; returns (result, qps)."""
    done, t0 = 0, time.perf_counter()
    while True:
        res, n = fn()
        done += n
        el = time.perf_counter() - t0
        if el >= 0.3:
            return res, done / el


def bench_hnswlib(base, q, gt, threads, efs, tmp):
    import hnswlib
    n, d = base.shape
    r0, t0 = rss(), time.perf_counter()
    idx = hnswlib.Index(space="l2", dim=d)
    idx.init_index(max_elements=n, ef_construction=EF_CONSTRUCT, M=M, random_seed=42)
    idx.add_items(base, np.arange(n), num_threads=threads)
    el = time.perf_counter() - t0
    emit(engine="hnswlib", what="build", threads=threads, seconds=round(el, 3),
         points_per_s=round(n / el, 1), rss_bytes_per_point=round((rss() - r0) / n, 1))
    for ef in efs:
        idx.set_ef(ef)
        (labels, _), qps = timed_queries(lambda: (idx.knn_query(q, k=K, num_threads=1), len(q)))
        emit(engine="hnswlib", what="search", ef=ef, recall=round(recall(labels, gt), 4),
             qps=round(qps, 1))
    for pct in FILTERS:
        emit(engine="hnswlib", what="filter", pct=pct, ef=64, recall=None, qps=None,
             note="hnswlib %s has no filter in knn_query" % getattr(hnswlib, "__version__", "0.6.2"))
    path = os.path.join(tmp, "hnswlib.bin")
    t0 = time.perf_counter()
    idx.save_index(path)
    save = time.perf_counter() - t0
    t0 = time.perf_counter()
    idx2 = hnswlib.Index(space="l2", dim=d)
    idx2.load_index(path, max_elements=n)
    load = time.perf_counter() - t0
    emit(engine="hnswlib", what="persist", save_s=round(save, 3), open_s=round(load, 3),
         open_mmap_s=None)
    os.unlink(path)


def faiss_filtered(faiss, idx, q, mask, ef):
    bitmap = np.packbits(mask.astype(np.uint8), bitorder="little")
    sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
    params = faiss.SearchParametersHNSW(sel=sel, efSearch=ef)
    return timed_queries(lambda: (idx.search(q, K, params=params), len(q)))


def bench_faiss(base, q, gt, threads, efs, tmp, masks):
    import faiss
    n, d = base.shape
    faiss.omp_set_num_threads(threads)
    r0, t0 = rss(), time.perf_counter()
    idx = faiss.IndexHNSWFlat(d, M)
    idx.hnsw.efConstruction = EF_CONSTRUCT
    idx.add(base)
    el = time.perf_counter() - t0
    emit(engine="faiss", what="build", threads=threads, seconds=round(el, 3),
         points_per_s=round(n / el, 1), rss_bytes_per_point=round((rss() - r0) / n, 1))
    faiss.omp_set_num_threads(1)
    for ef in efs:
        idx.hnsw.efSearch = ef
        (res, qps) = timed_queries(lambda: (idx.search(q, K), len(q)))
        emit(engine="faiss", what="search", ef=ef, recall=round(recall(res[1], gt), 4),
             qps=round(qps, 1))
    for pct, (mask, fgt) in masks.items():
        try:
            (res, qps) = faiss_filtered(faiss, idx, q, mask, 64)
            emit(engine="faiss", what="filter", pct=pct, ef=64,
                 recall=round(recall(res[1], fgt), 4), qps=round(qps, 1))
        except (AttributeError, TypeError) as e:
            emit(engine="faiss", what="filter", pct=pct, ef=64, recall=None, qps=None, note=str(e))
    path = os.path.join(tmp, "faiss.bin")
    t0 = time.perf_counter()
    faiss.write_index(idx, path)
    save = time.perf_counter() - t0
    t0 = time.perf_counter()
    faiss.read_index(path)
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    faiss.read_index(path, faiss.IO_FLAG_MMAP)
    load_mmap = time.perf_counter() - t0
    emit(engine="faiss", what="persist", save_s=round(save, 3), open_s=round(load, 3),
         open_mmap_s=round(load_mmap, 3))
    os.unlink(path)


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: hnsw_peer.py DIR THREADS EF...")
    d, threads, efs = sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3:]]
    base, q = read_fbin(os.path.join(d, "base.fbin")), read_fbin(os.path.join(d, "query.fbin"))
    gt = read_ibin(os.path.join(d, "gt.ibin"))
    masks = {p: (np.fromfile(os.path.join(d, "mask_%d.u8" % p), dtype=np.uint8) != 0,
                 read_ibin(os.path.join(d, "gt_%d.ibin" % p))) for p in FILTERS}
    engines = os.environ.get("BENCH_PEERS", "hnswlib faiss").split()
    with tempfile.TemporaryDirectory(dir=d) as tmp:
        if "hnswlib" in engines:
            bench_hnswlib(base, q, gt, threads, efs, tmp)
        if "faiss" in engines:
            bench_faiss(base, q, gt, threads, efs, tmp, masks)


if __name__ == "__main__":
    main()
