export declare const ROOT: string;
export declare const BUNDLE: string;
export declare function build(): void;
