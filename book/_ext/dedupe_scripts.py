"""Drop duplicate <script> entries: sphinx-togglebutton and sphinx-thebe register their inline
config scripts twice under Jupyter Book 1.x (once with filename '' and once with None), and the
second ``const THEBE_JS_URL = ...`` throws "Identifier 'THEBE_JS_URL' has already been
declared" in every reader's console."""


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for script in scripts:
        filename = getattr(script, "filename", script) or None
        attributes = tuple(sorted(getattr(script, "attributes", {}).items()))
        if (filename, attributes) in seen:
            continue
        seen.add((filename, attributes))
        unique.append(script)
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=10000)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
