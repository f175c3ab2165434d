/**
 * Media types as they are stored and sent back in `Content-Type`: RFC 6838 `type/subtype`
 * (restricted names: a letter or digit, then up to 126 of `A-Za-z0-9!#$&-^_.+`), followed by
 * RFC 9110 parameters (`; name=token` or `; name="quoted string"`), ASCII only. Anything else
 * could not be a header value (CR/LF, non-Latin-1) or would be refused by clients.
 */
export const MAX_MEDIA_TYPE_LENGTH = 255;

const NAME = "[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}";
const TOKEN = "[A-Za-z0-9!#$%&'*+.^_`|~-]+";
const QUOTED = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\t \\x21-\\x7e])*"';
const MEDIA_TYPE = new RegExp(`^${NAME}/${NAME}(?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|${QUOTED}))*$`);

export const isMediaType = (value: string): boolean => value.length <= MAX_MEDIA_TYPE_LENGTH && MEDIA_TYPE.test(value);
