"""Gated PixelCNN: convolutional autoregression over pixels in raster order.

van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu (2016), "Conditional Image
Generation with PixelCNN Decoders", NeurIPS: a vertical stack that sees every row above a pixel
and a horizontal stack that sees the pixels to its left in its row (together: no blind spot),
gated activations tanh(a) * sigmoid(b), and residual connections in the horizontal stack; every
layer's horizontal output also reaches the output head through a 1x1 skip connection (as in
pytorch-generative's and PixelCNN++'s), which trains faster at the same cost.
Reproduction (binarized MNIST): PixelCNN 81.30 nats test NLL (van den Oord et al. 2016, "Pixel
Recurrent Neural Networks"); pytorch-generative's Gated PixelCNN (10 gated layers of 128 channels,
dynamically binarized MNIST): 81.50 nats.

Causality is built by shifting, not by masking weights: the vertical stack's input is the image
moved down one row, and its (kernel // 2 + 1) x kernel convolutions see only rows at or above
the current one of their input, so its features at row i depend on image rows < i; the
horizontal stack's input is the image moved right one column, and its 1 x (kernel // 2 + 1)
convolutions see only columns at or left of the current one. Convolutions do not know where in
the image they are, which a small network on a fixed layout (an Atari screen's score, a road's
lanes) needs: the first layer also reads each pixel's row and column (two channels that depend
on no pixel's value), and every output parameter has a bias of its own per position, as NADE's
and MADE's have. The colour channels of one pixel
(sub-pixels) are ordered R, G, B as in `arbench.models.base.natural_order`: the network's
output at a pixel depends on whole earlier pixels only, and channel c's parameters add, for each
earlier channel c' of the same pixel, its value times coefficients the network gives at that
pixel (PixelCNN++'s linear dependence of a pixel's green on its red, and blue on both, Salimans
et al. 2017, applied to every parameter of any output distribution).

Sampling computes, at each pixel, only the activations that pixel's conditionals need (Ramachandran
et al. 2017, "Fast Generation for Convolutional Autoregressive Models"): the vertical stack one row
at a time once the row above is drawn, the horizontal stack one column at a time from the columns
already drawn. Its cost is about one forward pass per image instead of one per pixel
(`naive_sample` keeps the one-pass-per-pixel sampler that the tests and `bench/` compare with).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from arbench.core.plan import SettingsError, architecture_settings, odd_kernels
from arbench.models.base import NeuralDensityModel, natural_order
from arbench.models.distributions import make_output

EVAL_BATCH = 500


def gate(pre_activation: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """tanh(a) * sigmoid(b) of the two halves of `pre_activation` along `dim`."""
    a, b = pre_activation.chunk(2, dim)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(torch.nn.Module):
    """One layer of both stacks. The first layer reads the shifted image and has no residual
    connection (its horizontal input is the image, not the stack); as the image has few channels,
    a wide first kernel (7, as pytorch-generative's) widens the receptive field almost for free."""

    def __init__(self, in_channels: int, channels: int, kernel: int, first: bool):
        super().__init__()
        self.reach = kernel // 2
        self.first = first
        self.vertical = torch.nn.Conv2d(in_channels, 2 * channels, (self.reach + 1, kernel))
        self.link = torch.nn.Conv2d(2 * channels, 2 * channels, 1)
        self.horizontal = torch.nn.Conv2d(in_channels, 2 * channels, (1, self.reach + 1))
        self.residual = torch.nn.Conv2d(channels, channels, 1)
        self.skip = torch.nn.Conv2d(channels, channels, 1)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.reach
        v_pre = self.vertical(F.pad(v, (r, r, r, 0)))  # rows i-r..i, columns j-r..j+r
        h_pre = self.horizontal(F.pad(h, (r, 0, 0, 0))) + self.link(v_pre)  # columns j-r..j
        h_out = self.residual(gate(h_pre))
        return gate(v_pre), h_out if self.first else h + h_out


class PixelCNN(NeuralDensityModel):
    name = "pixelcnn"
    eval_batch = EVAL_BATCH
    members = 1
    sample_batch = 2048

    def __init__(self, shape, levels: int, config: dict | None = None):
        config = architecture_settings(self.name, config)
        super().__init__(shape, levels, config)
        if problem := odd_kernels(config, levels):
            raise SettingsError(f"pixelcnn: {problem}")
        self.output = make_output(levels, config["output"], config["components"])
        image_channels, channels = self.shape[0], config["channels"]
        height, width = self.shape[1:]
        # initialised from the model's own seed, leaving the global generator as it was
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config["seed"])
            self.layers = torch.nn.ModuleList(
                [
                    GatedLayer(image_channels + 2, channels, config["first_kernel"], first=True),
                    *(
                        GatedLayer(channels, channels, config["kernel"], first=False)
                        for _ in range(config["layers"] - 1)
                    ),
                ]
            )
            k = self.output.params_per_dim
            # per pixel: each channel's parameters, then per pair (c' < c) its coefficients
            self.pairs = image_channels * (image_channels - 1) // 2
            self.head = torch.nn.Sequential(
                torch.nn.ReLU(),
                torch.nn.Conv2d(channels, config["head"], 1),
                torch.nn.ReLU(),
                torch.nn.Conv2d(config["head"], (image_channels + self.pairs) * k, 1),
            )
        outputs = (image_channels + self.pairs) * k
        self.position_bias = torch.nn.Parameter(torch.zeros(outputs, height, width))
        self.register_buffer("order", natural_order(self.shape))
        rows = torch.linspace(-1, 1, height)[:, None].expand(height, width)
        columns = torch.linspace(-1, 1, width)[None, :].expand(height, width)
        self.register_buffer("coordinates", torch.stack([rows, columns]), persistent=False)

    # -- the network --------------------------------------------------------------------------

    def centred(self, x: torch.Tensor) -> torch.Tensor:
        """Integer levels -> [-1, 1]: what the sub-pixel coefficients multiply."""
        return x.to(torch.float32) * (2.0 / (self.levels - 1)) - 1.0

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The head's output (B, (C + pairs) K, H, W) for long images (B, C, H, W): at each pixel,
        what the pixels before it in raster order determine."""
        image = self.inputs(x)
        where = self.coordinates.expand(len(x), -1, -1, -1)
        v = torch.cat([F.pad(image, (0, 0, 1, 0))[:, :, :-1], where], 1)  # moved down one row
        h = torch.cat([F.pad(image, (1, 0, 0, 0))[:, :, :, :-1], where], 1)  # and right one column
        skipped = 0
        for layer in self.layers:
            v, h = layer(v, h)
            skipped = skipped + layer.skip(h)
        return self.head(skipped) + self.position_bias

    def channel_params(self, features: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Parameters (..., C, K) of every channel from the head's output (..., (C + pairs) K)
        and the pixel's values (..., C): channel c's own parameters plus, for each earlier
        channel c', its centred value times their coefficients."""
        channels, k = self.shape[0], self.output.params_per_dim
        parts = features.unflatten(-1, (channels + self.pairs, k))
        own, coefficients = parts[..., :channels, :], parts[..., channels:, :]
        if not self.pairs:
            return own
        values = self.centred(x)
        rows = [own[..., 0, :]]
        pair = 0
        for c in range(1, channels):
            row = own[..., c, :]
            for earlier in range(c):
                row = row + values[..., earlier, None] * coefficients[..., pair, :]
                pair += 1
            rows.append(row)
        return torch.stack(rows, -2)

    def params(self, x: torch.Tensor) -> torch.Tensor:
        """Output parameters (B, H, W, C, K) for long images (B, C, H, W)."""
        features = self.features(x).permute(0, 2, 3, 1)
        return self.channel_params(features, x.permute(0, 2, 3, 1))

    def pixel_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) log p(x at each sub-pixel | everything before it)."""
        images = x.reshape(len(x), *self.shape)
        log_p = self.output.log_prob(self.params(images), images.permute(0, 2, 3, 1))
        return log_p.permute(0, 3, 1, 2)

    # -- the common interface -----------------------------------------------------------------

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        return -self.pixel_log_probs(x).flatten(1).sum(1)

    def member_log_prob(self, x: torch.Tensor, member: int) -> torch.Tensor:
        return self.pixel_log_probs(x).flatten(1).sum(1)

    def member_order(self, member: int) -> torch.Tensor:
        return self.order

    def member_pixel_log_probs(self, x: torch.Tensor, member: int) -> torch.Tensor:
        return self.pixel_log_probs(x).flatten(1)

    def sample_member(self, n: int, member: int, generator, given=None) -> torch.Tensor:
        return self.fast_sample(n, generator, given).flatten(1)

    # -- sampling -----------------------------------------------------------------------------

    def draw_pixel(self, features, images, row, column, generator, given) -> None:
        """Draw the channels of pixel (row, column) in order, from the head's output there
        (n, (C + pairs) K); a channel `given` as known is copied instead."""
        values = images[:, :, row, column]
        for c in range(self.shape[0]):
            if given is not None and given[1][c, row, column]:
                values[:, c] = given[0][:, c, row, column]
                continue
            params = self.channel_params(features, values)[:, c]
            values[:, c] = self.output.sample(params, generator)

    def fast_sample(self, n: int, generator, given=None) -> torch.Tensor:
        """n images (n, C, H, W), computing at each step only what the next pixel needs: per
        row, the vertical stack's row (from the rows above, already drawn); per pixel, the
        horizontal stack's column (from the columns to its left) and the head. With `given`
        (values (n, D), known (D,) bool, D in (C, H, W) order) the known sub-pixels are copied.
        """
        channels, height, width = self.shape
        device = self.device
        given = _unflatten_given(given, self.shape)
        images = torch.zeros(n, channels, height, width, dtype=torch.long, device=device)
        depth = len(self.layers)
        # each layer's vertical input, all rows: for the first, the image moved down a row (filled
        # in as rows are drawn) beside the coordinates
        first = torch.cat(
            [
                torch.zeros(n, channels, height, width, device=device),
                self.coordinates.expand(n, -1, -1, -1),
            ],
            1,
        )
        vertical_in = [first] + [
            torch.zeros(n, layer.residual.out_channels, height, width, device=device)
            for layer in self.layers[:-1]
        ]
        # each layer's horizontal input on the current row, with `reach` zero columns on the left
        horizontal_in = [
            torch.zeros(n, layer.horizontal.in_channels, width + layer.reach, device=device)
            for layer in self.layers
        ]
        head = [m for m in self.head if isinstance(m, torch.nn.Conv2d)]
        head_weights = [(conv.weight.flatten(1), conv.bias) for conv in head]
        horizontal_weights = [
            (layer.horizontal.weight.flatten(1), layer.horizontal.bias) for layer in self.layers
        ]
        residual_weights = [
            (layer.residual.weight.flatten(1), layer.residual.bias) for layer in self.layers
        ]
        skip_weights = [(layer.skip.weight.flatten(1), layer.skip.bias) for layer in self.layers]
        for row in range(height):
            links = []
            for index, layer in enumerate(self.layers):
                r = layer.reach
                window = vertical_in[index][:, :, max(0, row - r) : row + 1]
                window = F.pad(window, (r, r, r + 1 - window.shape[2], 0))
                v_pre = layer.vertical(window)  # (n, 2C, 1, W)
                links.append(layer.link(v_pre)[:, :, 0])
                if index + 1 < depth:
                    vertical_in[index + 1][:, :, row] = gate(v_pre)[:, :, 0]
            for buffer in horizontal_in:
                buffer.zero_()
            horizontal_in[0][:, channels:, self.layers[0].reach :] = self.coordinates[:, row]
            for column in range(width):
                skipped = 0
                for index, layer in enumerate(self.layers):
                    r = layer.reach
                    weight, bias = horizontal_weights[index]
                    window = horizontal_in[index][:, :, column : column + r + 1].flatten(1)
                    h_pre = torch.addmm(bias, window, weight.t()) + links[index][:, :, column]
                    weight, bias = residual_weights[index]
                    h_out = torch.addmm(bias, gate(h_pre), weight.t())
                    if not layer.first:
                        h_out = h_out + horizontal_in[index][:, :, column + r]
                    if index + 1 < depth:
                        following = self.layers[index + 1].reach
                        horizontal_in[index + 1][:, :, column + following] = h_out
                    weight, bias = skip_weights[index]
                    skipped = skipped + torch.addmm(bias, h_out, weight.t())
                features = F.relu(skipped)
                (w1, b1), (w2, b2) = head_weights
                features = torch.addmm(b2, F.relu(torch.addmm(b1, features, w1.t())), w2.t())
                features = features + self.position_bias[:, row, column]
                self.draw_pixel(features, images, row, column, generator, given)
                scaled = self.inputs(images[:, :, row, column])
                if row + 1 < height:  # the first layer's inputs: the image moved down...
                    vertical_in[0][:, :channels, row + 1, column] = scaled
                if column + 1 < width:  # ...and moved right
                    horizontal_in[0][:, :channels, column + self.layers[0].reach + 1] = scaled
        return images

    def naive_sample(self, n: int, generator, given=None) -> torch.Tensor:
        """The same distribution as `fast_sample`, drawn with one whole forward pass per pixel:
        the reference the tests and the benchmark compare with."""
        channels, height, width = self.shape
        given = _unflatten_given(given, self.shape)
        images = torch.zeros(n, channels, height, width, dtype=torch.long, device=self.device)
        for row in range(height):
            for column in range(width):
                features = self.features(images)[:, :, row, column]
                self.draw_pixel(features, images, row, column, generator, given)
        return images


def _unflatten_given(given, shape):
    if given is None:
        return None
    values, known = given
    return values.reshape(len(values), *shape), known.reshape(shape)
