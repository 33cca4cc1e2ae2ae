"""Tests of the chopay service foundation."""
