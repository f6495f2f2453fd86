"""page_out: an idle network's file-mapped weights leave resident memory and come back intact."""

import os
import sys

import pytest
import torch
from diffusers import ControlNetModel

from model.pageout import page_out, weight_ranges
from tests.model.conftest import tiny_controlnet, tiny_unet2d

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MADV_PAGEOUT is Linux's")


def resident_bytes(folder) -> int:
    """Resident bytes of this process's mappings of files under ``folder`` (``/proc/self/smaps``)."""
    total, counting = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
                counting = len(fields) >= 6 and fields[5].startswith(str(folder))
            elif counting and fields[0] == "Rss:":
                total += int(fields[1]) * 1024
    return total


def controlnet_output(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    sample, cond = torch.randn(1, 4, 8, 8, generator=g), torch.rand(1, 1, 32, 32, generator=g)
    text = torch.randn(1, 4, 32, generator=g)
    with torch.no_grad():
        down, mid = net(sample, 10, encoder_hidden_states=text, controlnet_cond=cond, return_dict=False)
    return torch.cat([t.flatten() for t in (*down, mid)])


def test_a_loaded_networks_pages_leave_and_its_outputs_stay(tmp_path):
    tiny_controlnet(tiny_unet2d()).save_pretrained(tmp_path)  # safetensors, as the weights folders hold them
    for file in tmp_path.iterdir():  # on disk, as downloaded weights are: the kernel keeps dirty pages
        with open(file, "rb+") as f:
            os.fsync(f.fileno())
    net = ControlNetModel.from_pretrained(tmp_path).eval()  # the weights map the file
    before = controlnet_output(net)
    resident = resident_bytes(tmp_path)
    assert resident > 100_000  # the forward pass read the weights from the mapped file

    advised = page_out(net)

    assert advised > 0.9 * sum(p.numel() * p.element_size() for p in net.parameters())
    assert resident_bytes(tmp_path) < 0.1 * resident
    assert torch.equal(controlnet_output(net), before)  # read back from the file, bit for bit
    assert resident_bytes(tmp_path) > 0.9 * resident


def test_weights_not_mapped_from_a_file_are_left_alone():
    net = tiny_controlnet(tiny_unet2d())  # built in memory: its pages are the only copy
    before = controlnet_output(net)
    assert weight_ranges(net) and page_out(net) == 0
    assert torch.equal(controlnet_output(net), before)
    assert page_out(None) == 0
