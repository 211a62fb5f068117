"""Tests of the sync worker: pure projection and diff, and against real servers."""
