"""Training and build jobs (Cox-PASNet, PAGE-Net, the demo build) and the queue that runs them in
worker processes. Modules are imported lazily by the worker; import what you need directly, e.g.
``from pathviz.jobs.coxpasnet import train_registered_coxpasnet``."""
