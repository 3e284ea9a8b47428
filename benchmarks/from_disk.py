"""Fitting from a file against fitting from memory: what data larger than memory costs.

Writes a float32 .npy file of ``--rows`` x ``--features`` (learnable labels:
a random linear teacher), then times, in one process, epochs of a small
network (FEATURES-64-10, batch 256, Adam) on the array in memory and on the
same file opened with ``np.load(mmap_mode="r")``, shuffled and not, and a
prediction over all rows. The file is read from the operating system's page
cache (it was just written), so this measures archfit's reading, not a disk.
Each figure is the median of ``--repeat`` epochs (seconds per epoch, from the
fit's history); the checks and the fingerprint, done once per fit, are timed
separately.

    python benchmarks/from_disk.py                          # 1,048,576 x 128 (512 MiB)
    python benchmarks/from_disk.py --rows 262144 --features 256
"""
import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time


def cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        lines = {k.strip(): v.strip() for k, _, v in
                 (line.partition(":") for line in out.splitlines())}
        flags = [f for f in ("avx2", "fma", "avx512f", "amx_tile") if f in lines.get("Flags", "")]
        return f"{lines.get('Model name', platform.processor())} ({' '.join(flags)})"
    except OSError:
        return platform.processor()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1 << 20)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folder", default=None, help="where to write the file (a temp folder)")
    args = parser.parse_args(argv)
    import numpy as np
    import archfit as af
    from archfit.kernels import ISA

    rng = np.random.default_rng(0)
    teacher = rng.normal(size=(args.features, 10)).astype(np.float32)
    folder = tempfile.mkdtemp(dir=args.folder)
    path = os.path.join(folder, "X.npy")
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                  shape=(args.rows, args.features))
    y = np.empty(args.rows, dtype=np.int64)
    for lo in range(0, args.rows, 1 << 16):
        block = rng.standard_normal((min(1 << 16, args.rows - lo), args.features),
                                    dtype=np.float32)
        X[lo:lo + len(block)] = block
        y[lo:lo + len(block)] = np.argmax(block @ teacher, axis=1)
    X.flush()
    del X
    on_disk = np.load(path, mmap_mode="r")
    in_memory = np.array(on_disk)
    model = af.Model(af.Architecture(args.features, [af.Dense(64, "relu"), af.Dense(10)],
                                     "softmax"))
    print(f"CPU: {cpu()}; archfit kernel path: {ISA}; {os.cpu_count()} CPUs")
    print(f"data: {args.rows:,} x {args.features} float32 ({in_memory.nbytes / 2**20:,.0f} MiB), "
          f"network {args.features}-64-10, batch 256, Adam, median of {args.repeat} epochs\n")
    print(f"{'':28s} {'memory':>12s} {'file':>12s} {'file/memory':>12s}")
    try:
        for shuffle in (True, False):
            hp = af.Hyperparameters(epochs=args.repeat, batch_size=256, shuffle=shuffle)
            seconds = {}
            for name, data in (("memory", in_memory), ("file", on_disk)):
                start = time.perf_counter()
                fitted = af.fit(model, data, y, hp)
                total = time.perf_counter() - start
                epoch = statistics.median(r["seconds"] for r in fitted.history)
                seconds[name] = (epoch, total - sum(r["seconds"] for r in fitted.history))
            label = "epoch, shuffled" if shuffle else "epoch, in order"
            print(f"{label:28s} {seconds['memory'][0]:11.3f}s {seconds['file'][0]:11.3f}s "
                  f"{seconds['file'][0] / seconds['memory'][0]:11.2f}x")
            print(f"{'  checks, fingerprint, setup':28s} {seconds['memory'][1]:11.3f}s "
                  f"{seconds['file'][1]:11.3f}s")
        times = {}
        for name, data in (("memory", in_memory), ("file", on_disk)):
            start = time.perf_counter()
            fitted.predict_proba(data)
            times[name] = time.perf_counter() - start
        print(f"{'predict_proba, all rows':28s} {times['memory']:11.3f}s {times['file']:11.3f}s "
              f"{times['file'] / times['memory']:11.2f}x")
    finally:
        del on_disk
        os.remove(path)
        os.rmdir(folder)


if __name__ == "__main__":
    main()
