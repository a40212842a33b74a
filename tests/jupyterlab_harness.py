"""A student's JupyterLab, driven by headless Chromium: what the browser tests share.

`JupyterLab(root)` starts the project's pinned JupyterLab on 127.0.0.1 with a secret token, serving
`root` (a temporary folder laid out as a student has it), with a settings folder of its own that
turns notebook windowing off (so every cell is in the page and a screenshot shows them all).
`LabPage` drives one notebook in it the way a student does: the menus, the editor's model, save.
`problems(...)` lists what a student would see as broken: a figure cell without a figure, or a
traceback whose innermost frame is inside a library rather than in a notebook cell.

Chromium is Debian's `chromium` package, driven by Playwright for Python pointed at it
(`executable_path`): Playwright talks to the browser directly over the DevTools protocol, with no
driver binary to keep in step with the browser (Selenium would need `chromium-driver` at exactly
the browser's version), and its waits and `page.evaluate` reach JupyterLab's own JavaScript API.
Playwright's own browser downloads are never used.
"""
import ast
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("SEQMOD_CHROMIUM", "/usr/bin/chromium")
RUN_ALL_MENU = ("Kernel", "Restart Kernel and Run All Cells…")


def chromium_missing_reason():
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright  # noqa: F401 - only whether it imports
    except ImportError:
        return "Playwright for Python is not installed (pip install -r requirements-dev.txt)"
    if not Path(CHROMIUM).exists():
        return (f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium "
                "fonts-noto-color-emoji), or set SEQMOD_CHROMIUM")
    return None


def launch_chromium(playwright):
    """The system Chromium, headless (to be unified with tests/browser.py when it exists)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """JupyterLab serving `root`; use as a context manager (stops the server and its kernels)."""

    def __init__(self, root: Path, env: dict = None):
        self.root = Path(root)
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = self.root.parent / f".jupyter-{self.port}"
        self.extra_env = env or {}
        self.process = None

    def __enter__(self):
        settings = self.home / "settings" / "@jupyterlab" / "notebook-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        news = self.home / "settings" / "@jupyterlab" / "apputils-extension"
        news.mkdir(parents=True, exist_ok=True)
        (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SEQMOD_", "JUPYTER", "PYTHONPATH"))}
        env.update({"JUPYTER_CONFIG_DIR": str(self.home / "config"), "JUPYTER_DATA_DIR": str(self.home / "data"),
                    "JUPYTER_RUNTIME_DIR": str(self.home / "runtime"), "IPYTHONDIR": str(self.home / "ipython"),
                    "JUPYTER_PLATFORM_DIRS": "1", **self.extra_env})
        self.log = open(self.home / "server.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={self.port}", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={self.root}", "--LabApp.expose_app_in_browser=True",
             f"--LabApp.user_settings_dir={self.home / 'settings'}",
             f"--LabApp.workspaces_dir={self.home / 'workspaces'}"],
            cwd=self.root, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {(self.home / 'server.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2).read()
                return self
            except OSError:
                time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError("JupyterLab did not answer within 120 s")

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # the server shuts its kernels down, then exits
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.log.close()

    def notebook_url(self, relative: str) -> str:
        return f"{self.url}/lab/tree/{relative}?token={self.token}"


def student_layout(root: Path, repo: Path) -> Path:
    """A local student's copy: the notebooks, the public tests and the checks library, as a clone of
    the course repository has them (the course's public bundle extracted, plus `notebooks/`)."""
    import zipfile
    root.mkdir(parents=True, exist_ok=True)
    zipfile.ZipFile(repo / "notebooks" / "course_public.zip").extractall(root)
    for notebook in (repo / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, root / "notebooks" / notebook.name)
    return root / "notebooks"


# -- one notebook in the page ---------------------------------------------------------------------

_PANEL = "window.jupyterapp.shell.currentWidget"

_COLLECT = f"""() => {{
  const panel = {_PANEL};
  return panel.content.widgets.map((cell, index) => {{
    const model = cell.model;
    const area = cell.node.querySelector('.jp-OutputArea');
    const images = area ? [...area.querySelectorAll('img')] : [];
    return {{
      index, type: model.type, source: model.sharedModel.getSource(),
      execution_count: model.type === 'code' ? model.executionCount : null,
      outputs: model.type === 'code' ? model.outputs.toJSON() : [],
      text: area ? area.innerText : '',
      images: images.length, images_shown: images.filter(i => i.complete && i.naturalWidth > 0).length,
    }};
  }});
}}"""


class LabPage:
    """One notebook open in JupyterLab in a Chromium page."""

    def __init__(self, page, lab: JupyterLab, relative: str):
        self.page, self.lab, self.relative = page, lab, relative
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.goto(lab.notebook_url(relative))
        page.wait_for_function(f"() => window.jupyterapp && {_PANEL} && {_PANEL}.context "
                               f"&& {_PANEL}.context.path === {json.dumps(relative)}", timeout=120_000)
        page.evaluate(f"async () => {{ await {_PANEL}.context.ready; await {_PANEL}.sessionContext.ready; }}")
        self.wait_idle()

    def menu(self, menu: str, item: str):
        """Click a main-menu entry by the words a student reads, e.g. ("Kernel", "Restart Kernel...")."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(menu)}$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()

    def restart_and_run_all(self, timeout_s=1800) -> float:
        """Kernel > Restart Kernel and Run All Cells…, confirm, wait until done; returns seconds."""
        start = time.monotonic()
        self.menu(*RUN_ALL_MENU)
        self.page.locator(".jp-Dialog-button.jp-mod-accept").click()
        self.page.wait_for_function(f"() => {_PANEL}.content.widgets.some(c => c.model.type === 'code' "
                                    "&& c.model.executionCount !== null)", timeout=120_000)
        self.wait_idle(timeout_s)
        return time.monotonic() - start

    def wait_idle(self, timeout_s=600):
        """Until the kernel is idle and no cell waits to run, twice in a row half a second apart."""
        busy = (f"() => {{ const p = {_PANEL}; const k = p.sessionContext.session?.kernel;"
                " return !k || k.status !== 'idle' || [...p.content.node.querySelectorAll('.jp-InputPrompt')]"
                ".some(n => n.textContent.includes('*')); }")
        deadline, calm = time.monotonic() + timeout_s, 0
        while calm < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.relative}: still running after {timeout_s} s")
            calm = 0 if self.page.evaluate(busy) else calm + 1
            time.sleep(0.5)

    def set_sources(self, sources: dict):
        """Type answers in through the notebook's model: {cell index: new source}."""
        self.page.evaluate(f"""(sources) => {{
            const cells = {_PANEL}.content.model.cells;
            for (const [index, text] of Object.entries(sources)) cells.get(Number(index)).sharedModel.setSource(text);
        }}""", {str(k): v for k, v in sources.items()})

    def save(self):
        self.page.evaluate("async () => { await window.jupyterapp.commands.execute('docmanager:save'); }")
        self.page.wait_for_function(f"() => !{_PANEL}.context.model.dirty")

    def run_cell(self, index: int):
        self.page.evaluate(f"""async (index) => {{
            const panel = {_PANEL};
            panel.content.activeCellIndex = index;
            await window.jupyterapp.commands.execute('notebook:run-cell');
        }}""", index)
        self.wait_idle()

    def cells(self) -> list:
        return self.page.evaluate(_COLLECT)

    def screenshot(self, path: Path):
        """The whole notebook in one picture: the viewport grows to the notebook's height first."""
        height = self.page.evaluate(f"() => Math.max(...[{_PANEL}.content.node, ...{_PANEL}.content.node"
                                    ".querySelectorAll('*')].map(n => n.scrollHeight))")
        self.page.set_viewport_size({"width": 1400, "height": min(max(1000, height + 200), 30000)})
        self.page.evaluate(
            "() => { for (const n of document.querySelectorAll('*')) if (n.scrollTop) n.scrollTop = 0; }")
        self.page.wait_for_timeout(500)
        self.page.screenshot(path=str(path), full_page=True)
        self.page.set_viewport_size({"width": 1400, "height": 1000})


class SubmitFailed(AssertionError):
    """The submit cell wrote no zip; the message is what the cell printed."""


def submit(lab_page: LabPage, folder: Path, assignment: str) -> Path:
    """Save, run the submit cell (the last code cell), and return the zip it wrote."""
    lab_page.save()
    cells = lab_page.cells()
    index = max(c["index"] for c in cells if c["type"] == "code")
    target = folder / f"{assignment}_submission.zip"
    target.unlink(missing_ok=True)
    lab_page.run_cell(index)
    text = lab_page.cells()[index]["text"]
    if not target.exists():
        raise SubmitFailed(f"no {target.name} after the submit cell; it printed: {text}")
    return target


# -- what a student would see as broken --------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def innermost_frame(traceback_lines) -> str:
    """The last frame of a rendered IPython traceback: 'Cell In[7], line 3' or a library file."""
    frames = []
    for line in _ANSI.sub("", "\n".join(traceback_lines)).split("\n"):
        line = line.strip()
        if line.startswith(("Cell In[", "File ", "<ipython-input-")):
            frames.append(line)
    return frames[-1] if frames else ""


def from_library(traceback_lines) -> bool:
    frame = innermost_frame(traceback_lines)
    return bool(frame) and not frame.startswith(("Cell In[", "<ipython-input-"))


def figure_cells(cells) -> set:
    """Code cells that draw a figure: they call plt.subplots/figure outside a function, or call (outside
    a function) a notebook function that does."""
    def draws(node):
        return any(isinstance(n, ast.Attribute) and n.attr in ("subplots", "figure")
                   and isinstance(n.value, ast.Name) and n.value.id == "plt" for n in ast.walk(node))

    plotters, found = set(), set()
    for cell in cells:
        if cell["type"] != "code":
            continue
        try:
            tree = ast.parse(cell["source"])
        except SyntaxError:
            continue
        plotters |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and draws(n)}
        top = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        called = {n.func.id for s in top for n in ast.walk(s)
                  if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        if any(draws(s) for s in top) or called & plotters:
            found.add(cell["index"])
    return found


def errors(cells) -> list:
    """(cell index, error output) for every error output in the notebook."""
    return [(c["index"], out) for c in cells for out in c["outputs"] if out.get("output_type") == "error"]


def problems(cells, expect_figures=True) -> list:
    """What a student would see as broken, one line each (empty when nothing is)."""
    found = []
    for index, error in errors(cells):
        if from_library(error.get("traceback", [])):
            found.append(f"cell {index}: a traceback from inside a library ({innermost_frame(error['traceback'])}): "
                         f"{error.get('ename')}: {error.get('evalue', '')[:200]}")
    if expect_figures:
        for index in sorted(figure_cells(cells)):
            cell = cells[index]
            if cell["images_shown"] == 0:
                found.append(f"cell {index}: no figure shown (a figure cell; output: {cell['text'][:200]!r})")
    return found


def reference_sources(spec) -> dict:
    """{cell index: source} turning the student notebook into one with the reference answers."""
    import nbformat

    from tools.make_samples import filled
    student = nbformat.read(spec.student, as_version=4)
    answered = filled(spec, 1.0)
    return {i: cell.source for i, (cell, before) in enumerate(zip(answered.cells, student.cells))
            if cell.source != before.source}
