// The snippet editor: CodeMirror 6 with Python highlighting and line numbers, in the site's colours.
// vendor/build.py bundles this file and its imports into one script (esbuild), which defines window.SnippetEditor.
import { EditorState, Prec } from "@codemirror/state";
import {
  EditorView, drawSelection, highlightActiveLine, highlightActiveLineGutter, keymap, lineNumbers,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { HighlightStyle, bracketMatching, indentOnInput, indentUnit, syntaxHighlighting } from "@codemirror/language";
import { python } from "@codemirror/lang-python";
import { tags } from "@lezer/highlight";

// Every colour keeps a contrast of at least 5:1 on the editor's background (#1e2731) and its active line, so the
// accessibility check (axe's color-contrast) holds for code too.
const highlight = HighlightStyle.define([
  { tag: [tags.keyword, tags.controlKeyword, tags.definitionKeyword, tags.moduleKeyword], color: "#f5a3d0" },
  { tag: [tags.number, tags.bool, tags.null], color: "#ffb454" },
  { tag: [tags.string, tags.special(tags.string)], color: "#5ee6b0" },
  { tag: tags.comment, color: "#9aa7b4", fontStyle: "italic" },
  { tag: [tags.function(tags.variableName), tags.function(tags.propertyName)], color: "#8cc8ff" },
  { tag: [tags.definition(tags.variableName), tags.definition(tags.function(tags.variableName))], color: "#c3a6ff" },
  { tag: [tags.operator, tags.punctuation, tags.bracket], color: "#e6edf3" },
]);

const theme = EditorView.theme({
  "&": { backgroundColor: "#1e2731", color: "#e6edf3", borderRadius: "8px", border: "1px solid #2a3440" },
  "&.cm-focused": { outline: "2px solid #ffb454", outlineOffset: "2px" },
  ".cm-content": { fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace", caretColor: "#ffb454" },
  ".cm-cursor": { borderLeftColor: "#ffb454" },
  ".cm-gutters": { backgroundColor: "#171e26", color: "#9aa7b4", border: "none", borderRadius: "8px 0 0 8px" },
  ".cm-activeLine, .cm-activeLineGutter": { backgroundColor: "#24303c" },
  "&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection": { backgroundColor: "#3a4f66" },
  ".cm-matchingBracket": { outline: "1px solid #9aa7b4", backgroundColor: "transparent" },
}, { dark: true });

// create(parent, {doc, label, onRun, onChange}): an editor in `parent` holding `doc`; Ctrl+Enter (Cmd+Enter on a
// Mac) calls onRun(), every edit onChange(code). Tab indents; Escape then Tab leaves the editor (CodeMirror's
// rule, so the keyboard is never trapped).
function create(parent, { doc, label, onRun = () => {}, onChange = () => {} }) {
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        lineNumbers(), highlightActiveLineGutter(), highlightActiveLine(), drawSelection(), history(),
        indentOnInput(), bracketMatching(), indentUnit.of("    "), python(),
        syntaxHighlighting(highlight), theme,
        Prec.highest(keymap.of([{ key: "Mod-Enter", run: () => { onRun(); return true; } }])),
        keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
        EditorView.contentAttributes.of({ "aria-label": label }),
        EditorView.updateListener.of((update) => { if (update.docChanged) onChange(update.state.doc.toString()); }),
      ],
    }),
  });
  return {
    getCode: () => view.state.doc.toString(),
    setCode(code) { view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: code } }); },
    focus: () => view.focus(),
  };
}

window.SnippetEditor = { create };
