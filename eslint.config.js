// ESLint for the extension and its unit tests (flat config): the recommended rules, unused
// variables as errors. `make lint` runs it before the tests.
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  {
    rules: {
      // `const { boxes, ...rest } = x` is how a key is left out of a copy.
      "no-unused-vars": ["error", { ignoreRestSiblings: true }],
    },
  },
  {
    files: ["extension/**/*.js"],
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: "module",
      globals: { ...globals.browser, ...globals.webextensions },
    },
  },
  {
    // Classic scripts: manifest content scripts cannot be modules.
    files: ["extension/content/loader.js", "extension/content/pair.js"],
    languageOptions: { sourceType: "script" },
  },
  {
    files: ["tests/extension/**/*.mjs", "eslint.config.js"],
    languageOptions: { ecmaVersion: 2024, sourceType: "module", globals: { ...globals.node } },
  },
];
