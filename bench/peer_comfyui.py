"""Runner of the comfyui peer for bench/peers.py: not written yet (the contender is listed under skipped)."""
