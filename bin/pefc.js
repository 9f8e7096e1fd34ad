#!/usr/bin/env node
import "../dist/bundle/pefc.js";
