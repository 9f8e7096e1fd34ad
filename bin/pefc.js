#!/usr/bin/env node
import "../dist/cli/main-bin.js";
