"""The headless three-stage trainer: dataset format and preprocessing, samples, masks, loss, loop."""
