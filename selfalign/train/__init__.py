"""SFT and DPO training over TRL on selfalign outputs."""
