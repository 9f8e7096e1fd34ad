/**
 * The .peft grammar as a chevrotain CstParser: grammar only, no actions. Recovery is on, so one
 * run reports every syntax error; `unknownStatement` swallows a statement that starts with an
 * unknown word so the checker can name it (P203) and carry on. grammar/peft.ebnf mirrors these
 * rules one for one (a test keeps them in step).
 */
import { CstParser, EOF, type CstNode, type IToken } from "chevrotain";
import {
  allTokens, Anything, Colon, Comma, Equals, Identifier, Kw, LBracket, LCurly, LParen, Name, NumberLit,
  Path, Percent, RBracket, RCurly, Ref, Regex, Role, RParen, SelectorWord, Semi, StringLit,
} from "./tokens.js";

export class PeftParser extends CstParser {
  constructor() {
    super(allTokens, { recoveryEnabled: true, nodeLocationTracking: "full", maxLookahead: 3 });
    this.performSelfAnalysis();
  }

  file = this.RULE("file", () => {
    this.MANY(() => this.SUBRULE(this.statement));
    this.CONSUME(EOF);
  });

  statement = this.RULE("statement", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.headerStatement) },
      { ALT: () => this.SUBRULE(this.modelStatement) },
      { ALT: () => this.SUBRULE(this.selectStatement) },
      { ALT: () => this.SUBRULE(this.dataStatement) },
      { ALT: () => this.SUBRULE(this.freezeStatement) },
      { ALT: () => this.SUBRULE(this.methodStatement) },
      { ALT: () => this.SUBRULE(this.hybridStatement) },
      { ALT: () => this.SUBRULE(this.initStatement) },
      { ALT: () => this.SUBRULE(this.trainStatement) },
      { ALT: () => this.SUBRULE(this.saveStatement) },
      { ALT: () => this.SUBRULE(this.exportStatement) },
      { ALT: () => this.SUBRULE(this.unknownStatement) },
    ]);
  });

  headerStatement = this.RULE("headerStatement", () => {
    this.CONSUME(Kw.peft);
    this.CONSUME(NumberLit, { LABEL: "version" });
    this.CONSUME(Semi);
  });

  modelStatement = this.RULE("modelStatement", () => {
    this.CONSUME(Kw.model);
    this.CONSUME(StringLit, { LABEL: "source" });
    this.SUBRULE(this.blockOrSemi);
  });

  selectStatement = this.RULE("selectStatement", () => {
    this.CONSUME(Kw.select);
    this.CONSUME(Identifier, { LABEL: "name" });
    this.CONSUME(Equals);
    this.SUBRULE(this.selector);
    this.CONSUME(Semi);
  });

  dataStatement = this.RULE("dataStatement", () => {
    this.CONSUME(Kw.data);
    this.OR([
      { ALT: () => this.CONSUME(Kw.train, { LABEL: "split" }) },
      { ALT: () => this.CONSUME(Kw.eval, { LABEL: "split" }) },
    ]);
    this.OPTION(() => this.CONSUME(StringLit, { LABEL: "file" }));
    this.SUBRULE(this.blockOrSemi);
  });

  freezeStatement = this.RULE("freezeStatement", () => {
    this.OR([
      { ALT: () => this.CONSUME(Kw.freeze, { LABEL: "action" }) },
      { ALT: () => this.CONSUME(Kw.unfreeze, { LABEL: "action" }) },
    ]);
    this.OR2([
      { ALT: () => this.CONSUME(Kw.base, { LABEL: "word" }) },
      { ALT: () => this.CONSUME(Kw.all, { LABEL: "word" }) },
      { ALT: () => this.SUBRULE(this.selector) },
    ]);
    this.CONSUME(Semi);
  });

  methodStatement = this.RULE("methodStatement", () => {
    this.SUBRULE(this.methodName);
    this.MANY(() => this.SUBRULE(this.argument));
    this.OPTION(() => {
      this.CONSUME(Kw.on);
      this.SUBRULE(this.selector);
    });
    this.OR([
      { ALT: () => this.SUBRULE(this.methodBlock) },
      { ALT: () => this.CONSUME(Semi) },
    ]);
  });

  methodName = this.RULE("methodName", () => {
    this.OR([
      { ALT: () => this.CONSUME(Kw.lora, { LABEL: "method" }) },
      { ALT: () => this.CONSUME(Kw.adalora, { LABEL: "method" }) },
      { ALT: () => this.CONSUME(Kw.ia3, { LABEL: "method" }) },
      { ALT: () => this.CONSUME(Kw.bitfit, { LABEL: "method" }) },
      { ALT: () => this.CONSUME(Kw.prefix, { LABEL: "method" }) },
      { ALT: () => this.CONSUME(Kw.p_tuning_v2, { LABEL: "method" }) },
      { ALT: () => this.CONSUME(Kw.p_tuning, { LABEL: "method" }) },
      { ALT: () => this.CONSUME(Kw.prompt_tuning, { LABEL: "method" }) },
      {
        ALT: () => {
          this.CONSUME(Kw.adapter, { LABEL: "method" });
          this.OPTION(() =>
            this.OR2([
              { ALT: () => this.CONSUME(Kw.houlsby, { LABEL: "variant" }) },
              { ALT: () => this.CONSUME(Kw.pfeiffer, { LABEL: "variant" }) },
              { ALT: () => this.CONSUME(Kw.parallel, { LABEL: "variant" }) },
            ]),
          );
        },
      },
    ]);
  });

  methodBlock = this.RULE("methodBlock", () => {
    this.CONSUME(LCurly);
    this.MANY(() =>
      this.OR([
        { ALT: () => this.SUBRULE(this.assignment) },
        { ALT: () => this.SUBRULE(this.override) },
      ]),
    );
    this.CONSUME(RCurly);
  });

  override = this.RULE("override", () => {
    this.CONSUME(Kw.override);
    this.SUBRULE(this.selector);
    this.SUBRULE(this.block);
  });

  hybridStatement = this.RULE("hybridStatement", () => {
    this.OR([
      { ALT: () => this.CONSUME(Kw.mam, { LABEL: "hybrid" }) },
      { ALT: () => this.CONSUME(Kw.unipelt, { LABEL: "hybrid" }) },
      { ALT: () => this.CONSUME(Kw.combine, { LABEL: "hybrid" }) },
    ]);
    this.MANY(() => this.SUBRULE(this.argument));
    this.OPTION(() => {
      this.CONSUME(Kw.on);
      this.SUBRULE(this.selector);
    });
    this.OR2([
      { ALT: () => this.SUBRULE(this.hybridBlock) },
      { ALT: () => this.CONSUME(Semi) },
    ]);
  });

  hybridBlock = this.RULE("hybridBlock", () => {
    this.CONSUME(LCurly);
    this.MANY(() =>
      this.OR([
        { ALT: () => this.SUBRULE(this.assignment) },
        { ALT: () => this.SUBRULE(this.methodStatement) },
      ]),
    );
    this.CONSUME(RCurly);
  });

  initStatement = this.RULE("initStatement", () => {
    this.CONSUME(Kw.init);
    this.CONSUME(Kw.from);
    this.CONSUME(StringLit, { LABEL: "dir" });
    this.CONSUME(Semi);
  });

  trainStatement = this.RULE("trainStatement", () => {
    this.CONSUME(Kw.train);
    this.SUBRULE(this.block);
  });

  saveStatement = this.RULE("saveStatement", () => {
    this.CONSUME(Kw.save);
    this.OPTION(() => {
      this.CONSUME(Kw.every);
      this.SUBRULE(this.period);
    });
    this.OPTION2(() => {
      this.CONSUME(Kw.to);
      this.CONSUME(StringLit, { LABEL: "dir" });
    });
    this.OPTION3(() => {
      this.CONSUME(Kw.keep);
      this.CONSUME(NumberLit, { LABEL: "keep" });
    });
    this.CONSUME(Semi);
  });

  period = this.RULE("period", () => {
    this.OPTION(() => this.CONSUME(NumberLit, { LABEL: "count" }));
    this.OR([
      { ALT: () => this.CONSUME(Kw.step, { LABEL: "unit" }) },
      { ALT: () => this.CONSUME(Kw.steps, { LABEL: "unit" }) },
      { ALT: () => this.CONSUME(Kw.epoch, { LABEL: "unit" }) },
      { ALT: () => this.CONSUME(Kw.epochs, { LABEL: "unit" }) },
    ]);
  });

  exportStatement = this.RULE("exportStatement", () => {
    this.CONSUME(Kw.export);
    this.OR([
      { ALT: () => this.CONSUME(Kw.adapter, { LABEL: "what" }) },
      { ALT: () => this.CONSUME(Kw.merged, { LABEL: "what" }) },
    ]);
    this.CONSUME(Kw.to);
    this.CONSUME(StringLit, { LABEL: "dir" });
    this.CONSUME(Semi);
  });

  /** A statement that starts with a word pefc does not know: kept whole so it is reported once. */
  unknownStatement = this.RULE("unknownStatement", () => {
    this.CONSUME(Identifier, { LABEL: "word" });
    this.MANY(() => this.CONSUME(Anything));
    this.OR([
      { ALT: () => this.SUBRULE(this.skippedBlock) },
      { ALT: () => this.CONSUME(Semi) },
    ]);
  });

  skippedBlock = this.RULE("skippedBlock", () => {
    this.CONSUME(LCurly);
    this.MANY(() =>
      this.OR([
        { ALT: () => this.CONSUME(Anything) },
        { ALT: () => this.CONSUME(Semi) },
        { ALT: () => this.SUBRULE(this.skippedBlock) },
      ]),
    );
    this.CONSUME(RCurly);
  });

  blockOrSemi = this.RULE("blockOrSemi", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.block) },
      { ALT: () => this.CONSUME(Semi) },
    ]);
  });

  block = this.RULE("block", () => {
    this.CONSUME(LCurly);
    this.MANY(() => this.SUBRULE(this.assignment));
    this.CONSUME(RCurly);
  });

  assignment = this.RULE("assignment", () => {
    this.CONSUME(Name, { LABEL: "key" });
    this.CONSUME(Equals);
    this.SUBRULE(this.value);
    this.CONSUME(Semi);
  });

  /** `key=value` written inline after a method name. */
  argument = this.RULE("argument", () => {
    this.CONSUME(Name, { LABEL: "key" });
    this.CONSUME(Equals);
    this.SUBRULE(this.value);
  });

  value = this.RULE("value", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.quantity) },
      { ALT: () => this.CONSUME(StringLit, { LABEL: "string" }) },
      { ALT: () => this.CONSUME(Role, { LABEL: "role" }) },
      { ALT: () => this.SUBRULE(this.tuple) },
      { ALT: () => this.CONSUME(Name, { LABEL: "word" }) },
    ]);
  });

  quantity = this.RULE("quantity", () => {
    this.CONSUME(NumberLit, { LABEL: "number" });
    // A unit word followed by '=' starts the next inline argument (`hidden=512 tokens=30`).
    this.OPTION({
      GATE: () => this.LA(2).tokenType !== Equals,
      DEF: () =>
        this.OR([
          { ALT: () => this.CONSUME(Kw.token, { LABEL: "unit" }) },
          { ALT: () => this.CONSUME(Kw.tokens, { LABEL: "unit" }) },
          { ALT: () => this.CONSUME(Kw.step, { LABEL: "unit" }) },
          { ALT: () => this.CONSUME(Kw.steps, { LABEL: "unit" }) },
          { ALT: () => this.CONSUME(Kw.epoch, { LABEL: "unit" }) },
          { ALT: () => this.CONSUME(Kw.epochs, { LABEL: "unit" }) },
          { ALT: () => this.CONSUME(Percent, { LABEL: "unit" }) },
        ]),
    });
  });

  tuple = this.RULE("tuple", () => {
    this.CONSUME(LParen);
    this.AT_LEAST_ONE_SEP({ SEP: Comma, DEF: () => this.SUBRULE(this.value) });
    this.CONSUME(RParen);
  });

  selector = this.RULE("selector", () => {
    this.SUBRULE(this.selectorUnion, { LABEL: "include" });
    this.OPTION(() => {
      this.CONSUME(Kw.except);
      this.SUBRULE2(this.selectorUnion, { LABEL: "exclude" });
    });
  });

  selectorUnion = this.RULE("selectorUnion", () => {
    this.AT_LEAST_ONE_SEP({ SEP: Comma, DEF: () => this.SUBRULE(this.selectorTerm) });
  });

  selectorTerm = this.RULE("selectorTerm", () => {
    this.OR([
      {
        ALT: () => {
          this.SUBRULE(this.selectorAtom);
          this.OPTION(() => this.SUBRULE(this.layerFilter));
        },
      },
      { ALT: () => this.SUBRULE2(this.layerFilter) },
    ]);
  });

  selectorAtom = this.RULE("selectorAtom", () => {
    this.OR([
      { ALT: () => this.CONSUME(SelectorWord, { LABEL: "name" }) },
      { ALT: () => this.CONSUME(Path, { LABEL: "path" }) },
      { ALT: () => this.CONSUME(StringLit, { LABEL: "glob" }) },
      { ALT: () => this.CONSUME(Role, { LABEL: "role" }) },
      { ALT: () => this.CONSUME(Regex, { LABEL: "regex" }) },
      { ALT: () => this.CONSUME(Ref, { LABEL: "ref" }) },
    ]);
  });

  layerFilter = this.RULE("layerFilter", () => {
    this.OPTION(() => this.CONSUME(Kw.in));
    this.CONSUME(Kw.layers);
    this.CONSUME(LBracket);
    this.AT_LEAST_ONE_SEP({ SEP: Comma, DEF: () => this.SUBRULE(this.slice) });
    this.CONSUME(RBracket);
  });

  /** `3`, `2:`, `:-4`, `::2`, `0:14:2`. Numbers are labelled by their place. */
  slice = this.RULE("slice", () => {
    this.OPTION(() => this.CONSUME(NumberLit, { LABEL: "start" }));
    this.OPTION2(() => {
      this.CONSUME(Colon, { LABEL: "colon" });
      this.OPTION3(() => this.CONSUME2(NumberLit, { LABEL: "stop" }));
      this.OPTION4(() => {
        this.CONSUME2(Colon, { LABEL: "colon" });
        this.OPTION5(() => this.CONSUME3(NumberLit, { LABEL: "step" }));
      });
    });
  });
}

/** One parser instance serves every parse: chevrotain parsers are reusable via `input`. */
export const parserInstance = new PeftParser();

export function parseTokens(tokens: IToken[]): { cst: CstNode; errors: typeof parserInstance.errors } {
  parserInstance.input = tokens;
  const cst = parserInstance.file();
  return { cst, errors: parserInstance.errors };
}
