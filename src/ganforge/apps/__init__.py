"""Image restoration on top of ganforge: degradations (degrade), classical baselines (classical),
tiled inference (tiling) and the evaluation harness (restore_eval); networks and training live
beside them (restore_train)."""
