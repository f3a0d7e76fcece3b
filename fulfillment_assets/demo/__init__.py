"""The demo job run in a terminal (`python -m fulfillment_assets.demo.job`): outside the layers,
it uses the whole code location and the bundled demo API."""
