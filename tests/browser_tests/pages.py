"""What the browser tests read from and do to a page in Chromium, shared by the test modules:
wait for the case viewer, the slice each viewport shows, the grey levels a viewport drew,
the reference-ROI values around the phantom's mass, and the failed requests and console
errors a page saw."""

from .phantom import MASS_CENTRE, ORIGIN_MM, PIXEL_SPACING_MM


def wait_until_ready(page):
    page.wait_for_function(
        "() => ['1', 'error'].includes(document.getElementById('case').dataset.ready)",
        timeout=60_000,
    )
    error = page.locator(".case-error")
    assert page.evaluate("document.getElementById('case').dataset.ready") == "1", (
        error.text_content()
    )


def slice_indices(page):
    return page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('.viewport-cell')]"
        ".map(c => [c.dataset.phase, c.querySelector('.slice-index').textContent]))"
    )


def canvas_pixels(page, phase):
    """Mean and spread of the grey levels drawn in ``phase``'s viewport, and the share of non-black pixels."""
    return page.evaluate(
        """(phase) => {
            const canvas = document.querySelector(`.viewport-cell[data-phase="${phase}"] canvas`);
            const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
            let sum = 0, sumSq = 0, lit = 0, n = data.length / 4;
            for (let i = 0; i < data.length; i += 4) {
                const grey = data[i];
                sum += grey; sumSq += grey * grey; if (grey > 8) lit += 1;
            }
            const mean = sum / n;
            return { mean, sd: Math.sqrt(sumSq / n - mean * mean), lit: lit / n };
        }""",
        phase,
    )


def ellipse_on(study, phase, index, size):
    """Reference-ROI values: a 5 mm circle around the phantom's mass on slice ``index`` of ``phase``."""
    series = study.series.get(phase=phase)
    instance = list(series.instances.all())[index]
    z = instance.image_position_patient[2]
    spacing = PIXEL_SPACING_MM * 512 / size
    x, y = (
        ORIGIN_MM + MASS_CENTRE[1] * PIXEL_SPACING_MM,
        ORIGIN_MM + MASS_CENTRE[0] * PIXEL_SPACING_MM,
    )
    r = max(5.0, 3 * spacing)
    return {
        "sop_instance_uid": instance.sop_instance_uid,
        "tool": "ellipse",
        "points": [[x, y - r, z], [x, y + r, z], [x - r, y, z], [x + r, y, z]],
        "stats": {"mean": 130.0, "stdDev": 10.0, "min": 100.0, "max": 160.0, "area": 78.5},
    }


def failures(page, responses):
    """Console errors, uncaught exceptions and answers >= 400 seen by ``page``."""
    errors = [line for line in page.log if line.startswith(("pageerror", "error"))]
    return errors + [f"{status} {url}" for status, url in responses if status >= 400]


def record_responses(page):
    responses = []
    page.on("response", lambda response: responses.append((response.status, response.url)))
    return responses
