"""Fresh against converged epochs: does training slow down as the fit converges?

A classifier that becomes confident produces probabilities and errors whose
magnitude falls below float32's smallest normal number; arithmetic on such
subnormal numbers is many times slower on x86 unless flushed to zero. This
trains W1 (64-32-10, batch 32, Adam lr 1e-3, float32) on learnable data (the
labels of a random teacher network) for 300 epochs and compares the
throughput of its first and last 10 epochs (the kernel's time per epoch, from
the fit's history), and counts the subnormal probabilities the last θ̂ gives.

    python benchmarks/convergence.py                 # the installed archfit
    python benchmarks/convergence.py --build /tmp/old   # another build (pip install --target)

The issue's target: the last 10 epochs at least 0.9x the first 10.
"""
import argparse
import statistics
import sys


def teacher_data(n, n_features, n_classes, seed=0):
    """Features and the labels a random linear teacher gives them: separable,
    so the fit's margins keep growing, as a converging classifier's do."""
    import numpy as np
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    return X, np.argmax(X @ rng.normal(size=(n_features, n_classes)), axis=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default="", help="folder of another build to measure")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.build:
        sys.path.insert(0, args.build)
    import numpy as np
    import archfit as af
    if args.build and not af.__file__.startswith(args.build):
        raise SystemExit(f"archfit came from {af.__file__}, not {args.build}")
    import glob
    import os
    if glob.glob(os.path.join(os.path.dirname(af.__file__), "kernels*")):
        from archfit.kernels import ISA
    else:       # a build from before archfit.kernels (and its ARCHFIT_ISA)
        ISA = "the best the CPU runs (a build before archfit.kernels)"

    X, y = teacher_data(args.samples, 64, 10)
    model = af.Model(af.Architecture(64, [af.Dense(32, "relu"), af.Dense(10)], "softmax"))
    hp = af.Hyperparameters(epochs=args.epochs, batch_size=32, learning_rate=1e-3, seed=0,
                            n_threads=args.threads)
    fitted = af.fit(model, X, y, hp)
    seconds = [r["seconds"] for r in fitted.history]
    first = args.samples / statistics.median(seconds[1:11])     # the first warms up
    last = args.samples / statistics.median(seconds[-10:])
    proba = fitted.predict_proba(X)
    tiny = np.finfo(np.float32).tiny
    subnormal = int(np.count_nonzero((proba != 0) & (np.abs(proba) < tiny)))
    zero = int(np.count_nonzero(proba == 0))
    print(f"archfit {af.__file__.rsplit('/archfit/', 1)[0]}, kernel path {ISA}")
    print(f"W1 64-32-10 b32 float32, {args.samples} learnable samples, {args.epochs} epochs: "
          f"train loss {fitted.history[0]['train_loss']:.3f} -> "
          f"{fitted.history[-1]['train_loss']:.4f}, accuracy {fitted.score(X, y):.3f}")
    print(f"  epochs 2-11 {first:,.0f} samples/s, last 10 {last:,.0f}: "
          f"converged / fresh = {last / first:.2f}")
    print(f"  probabilities of the final fit: {subnormal} subnormal, {zero} exactly zero "
          f"(of {proba.size})")


if __name__ == "__main__":
    main()
