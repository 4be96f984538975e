import ArgumentParser
import Foundation
import SluiceBPE
import SluiceIO
import SluiceIngest
import SluiceVectors
import SluiceWords

/// Options shared by encode and decode.
struct TokenizerOptions: ParsableArguments {
    @Option(
        name: .long,
        help:
            "A tiktoken rank file, or GPT-2's encoder.json together with --merges; with --words, a word list (one token per line in id order, as a run's tokenizer.words.txt)."
    )
    var vocab: String?

    @Flag(name: .long, help: "The book's word-level tokenizer (SimpleTokenizerV2) instead of BPE.")
    var words = false

    @Option(
        name: .long, help: "--words: take the vocabulary from a word-vectors file's keys (then <|endoftext|>, <|unk|>)."
    )
    var vocabFrom: String?

    @Flag(name: .long, help: "--words: look pieces up lower-cased (for GloVe's vocabulary).")
    var lowercase = false

    @Option(name: .long, help: "GPT-2's vocab.bpe, when --vocab is encoder.json.")
    var merges: String?

    @Option(
        name: .customLong("special-token"),
        help: "A special token as NAME=ID (repeatable; default <|endoftext|>=50256).")
    var specialTokens: [String] = []

    /// The word tokenizer of --words; nil (with `buildFrom` given) builds the book's vocabulary of that text.
    func loadWords(buildFrom text: [UInt8]? = nil) -> WordTokenizer {
        if let vocabFrom {
            do {
                let vectors = try WordVectors.load(vocabFrom)
                return WordTokenizer(tokens: vectors.keys.strings, lowercase: lowercase)
            } catch {
                fail(error)
            }
        }
        if let vocab {
            return WordTokenizer(wordList: readInput(vocab), lowercase: lowercase)
        }
        guard let text else {
            fail(
                ValidationError("--words: give --vocab WORDS.txt (a run's tokenizer.words.txt) or --vocab-from VECTORS")
            )
        }
        return WordTokenizer.buildingVocabulary(from: [text], lowercase: lowercase)
    }

    var tokenizerName: String { words ? "words" : "bpe" }

    func load() -> BPEEncoder {
        guard let vocab else {
            fail(ValidationError("--vocab: give a tiktoken rank file, or encoder.json with --merges (or --words)"))
        }
        var specials: [String: TokenID] = [:]
        for item in specialTokens.isEmpty ? ["<|endoftext|>=50256"] : specialTokens {
            guard let equals = item.lastIndex(of: "="), let id = TokenID(item[item.index(after: equals)...]) else {
                fail(ValidationError("--special-token \(item): expected NAME=ID"))
            }
            specials[String(item[..<equals])] = id
        }
        do {
            return try BPEEncoder.load(vocab: vocab, merges: merges, specialTokens: specials)
        } catch {
            fail(error)
        }
    }
}

func readInput(_ path: String?) -> [UInt8] {
    do {
        if let path { return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }
        return [UInt8](FileHandle.standardInput.readDataToEndOfFile())
    } catch {
        fail("\(path ?? "stdin"): cannot read: \(error.localizedDescription)")
    }
}

struct Encode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Encode UTF-8 text into token ids (a JSON array on stdout), exactly as tiktoken does (or as the book's SimpleTokenizerV2 with --words).",
        discussion: """
            Text that spells a special token is ordinary text unless --allow-special is given \
            (tiktoken's encode_ordinary). Invalid UTF-8 is replaced with U+FFFD as Python's \
            errors="replace" does (--invalid-utf8 fail stops instead, naming the byte offset).

            With --words: pieces split on punctuation, -- and whitespace; unknown pieces are \
            <|unk|>, and "<|endoftext|>" in the text is its id (as in the book). The vocabulary is \
            --vocab (a word list), --vocab-from (a vectors file's keys) or, without either, the \
            book's vocabulary of the input itself (--save-vocab keeps it for decode).

            Example: echo -n "Hello, world" | sluice encode --vocab gpt2.tiktoken   →   [15496, 11, 995]
            """)

    @OptionGroup var tokenizer: TokenizerOptions

    @Argument(help: "Text file to encode (default: stdin).")
    var file: String?

    @Flag(name: .long, help: "Encode the text of special tokens as their ids.")
    var allowSpecial = false

    @Option(name: .long, help: "Invalid UTF-8: replace (default) or fail.")
    var invalidUTF8: InvalidPolicy = .replace

    enum InvalidPolicy: String, ExpressibleByArgument { case replace, fail }

    @Option(
        name: .long,
        help: "--words without --vocab: write the vocabulary built from the text here (one token per line).")
    var saveVocab: String?

    func run() throws {
        var bytes = readInput(file)
        // One text policy for both tokenizers: Python's errors="replace", or stop.
        if let offset = UTF8Repair.firstInvalid(bytes) {
            if invalidUTF8 == .fail {
                fail("\(file ?? "stdin"): invalid UTF-8 at byte \(offset); fix the input or use --invalid-utf8 replace")
            }
            bytes = UTF8Repair.repair(bytes, mode: .replace).bytes
        }
        if tokenizer.words {
            let words = tokenizer.loadWords(buildFrom: bytes)
            if let saveVocab {
                guard let list = words.wordList else {
                    fail("--save-vocab: a token holds a newline, which a word list cannot; leave out --save-vocab")
                }
                do {
                    try AtomicFileWriter.write(list, to: saveVocab)
                } catch {
                    fail(error)
                }
            }
            var ids: [UInt32] = []
            words.encode(utf8: bytes, into: &ids)
            print("[" + ids.map(String.init).joined(separator: ", ") + "]")
            return
        }
        let encoder = tokenizer.load()
        var ids: [TokenID] = []
        if allowSpecial {
            do {
                ids = try encoder.encode(
                    String(decoding: bytes, as: UTF8.self), policy: .allowOnly(Set(encoder.specialTokens.keys)))
            } catch {
                fail(error)
            }
        } else {
            encoder.encodeOrdinary(utf8: bytes, into: &ids, cache: PieceCache())
        }
        var output = "["
        output.reserveCapacity(ids.count * 6 + 2)
        for (index, id) in ids.enumerated() {
            if index > 0 { output += ", " }
            output += String(id)
        }
        print(output + "]")
    }
}

struct Decode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode a JSON array of token ids (stdin or a file) back into bytes on stdout.",
        discussion: """
            With --words, as the book decodes: tokens joined by spaces, then the space before \
            punctuation removed.

            Example: echo '[15496, 11, 995]' | sluice decode --vocab gpt2.tiktoken   →   Hello, world
            """)

    @OptionGroup var tokenizer: TokenizerOptions

    @Argument(help: "File with a JSON array of ids (default: stdin).")
    var file: String?

    func run() throws {
        let input = readInput(file)
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(input))
        } catch {
            fail("\(file ?? "stdin"): expected a JSON array of ids: \(error.localizedDescription)")
        }
        guard let numbers = parsed as? [Any] else { fail("\(file ?? "stdin"): expected a JSON array of ids") }
        var ids: [TokenID] = []
        for (index, value) in numbers.enumerated() {
            guard let number = value as? Int, number >= 0, number <= Int(UInt32.max) else {
                fail("\(file ?? "stdin"): item \(index) is \(value), not a token id (a non-negative integer)")
            }
            ids.append(TokenID(number))
        }
        if tokenizer.words {
            do {
                print(try tokenizer.loadWords().decode(ids), terminator: "")
            } catch {
                fail(error)
            }
            return
        }
        let encoder = tokenizer.load()
        do {
            FileHandle.standardOutput.write(Data(try encoder.decode(ids)))
        } catch {
            fail(error)
        }
    }
}
