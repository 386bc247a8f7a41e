"""Speed benchmarks: scripts that time things and print figures
(``python -m experiments.perf.<name>``): one update (``bench_update``), lockstep seeds
(``bench_seeds``), the host loop (``bench_loop``), the compiled loop (``loop_speed``) and
the accelerator run (``bench_gpu``, time-boxed by ``budget``)."""
