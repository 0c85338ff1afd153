"""The Fréchet distance's own cost: ``frechet_distance`` (scipy ``sqrtm`` of the 2048 x 2048
product, the reference formula) against ``frechet_distance_to_features`` (the low-rank form,
exact when the feature set has fewer rows than 2048), on Inception-shaped features.

The reference side is full-rank statistics (``--ref`` images, as a data set's originals); the
other side is ``--num`` images (an rFID over one emoji split: 692). Features are non-negative
like pool3's (gamma-distributed; the cost does not depend on the values). Prints seconds per
call (one call each: ``sqrtm`` took 20 s on an idle 2-core AMD EPYC) and the difference.

    .venv/bin/python benchmarks/bench_fid.py                       # N = 692 against 5,000
    .venv/bin/python benchmarks/bench_fid.py --num 692 2000 --threads 2
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
import warnings


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num", type=int, nargs="+", default=[692], help="images on the scored side")
    p.add_argument("--ref", type=int, default=5000, help="images behind the reference statistics")
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--threads", type=int, default=None, help="BLAS / LAPACK threads (set before numpy loads)")
    args = p.parse_args(argv)
    import numpy as np  # after __main__ set the thread count

    from textok.training import cpu_name
    from textok.metrics.fid import feature_stats, frechet_distance, frechet_distance_to_features

    rng = np.random.default_rng(0)
    mu1, s1 = feature_stats(rng.gamma(0.5, size=(args.ref, args.dim)))
    print(f"# bench_fid: {datetime.date.today()} on {cpu_name() or platform.processor()}, "
          f"threads {os.environ.get('OMP_NUM_THREADS', 'default')}; reference: {args.ref} x {args.dim}")
    print("| images | sqrtm form (s) | low-rank form (s) | speed-up | FID (sqrtm) | FID (low-rank) | difference | eps retry |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for n in args.num:
        feats = rng.gamma(0.55, size=(n, args.dim)) + 0.01
        t = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ref = frechet_distance(mu1, s1, *feature_stats(feats))
        t_ref = time.perf_counter() - t
        t = time.perf_counter()
        fast = frechet_distance_to_features(mu1, s1, feats)
        t_fast = time.perf_counter() - t
        retried = any("singular" in str(w.message) for w in caught)
        print(f"| {n} | {t_ref:.1f} | {t_fast:.2f} | {t_ref / t_fast:.0f}x | {ref:.6f} | {fast:.6f} | {fast - ref:.2e} | "
              f"{'yes' if retried else 'no'} |", flush=True)
    return 0


if __name__ == "__main__":
    import sys

    if "--threads" in sys.argv:  # numpy's BLAS reads these when it loads
        n = sys.argv[sys.argv.index("--threads") + 1]
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = n
    sys.exit(main())
